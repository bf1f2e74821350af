"""OpenLineage facet objects (imported only by :mod:`airflow_provider.lineage`'s facet method,
i.e. only when the OpenLineage provider is installed and asks)."""

from __future__ import annotations

from typing import Any

import attr
from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet, RunFacet


@attr.define
class OptimizationSolveRunFacet(RunFacet):
    """The facts of one remote solve: service, run/request id, status, objective."""

    service: str | None = None
    runId: str | None = None  # noqa: N815 - OpenLineage facet fields are camelCase
    status: str | None = None
    objective: float | None = None

    @staticmethod
    def _get_schema() -> str:
        return (
            "https://github.com/airflow-provider-optimization/airflow-provider-optimization/docs/lineage.md"
        )


def external_query(external_id: str, source: str) -> ExternalQueryRunFacet:
    return ExternalQueryRunFacet(externalQueryId=external_id, source=source)


def solve_facet(facts: dict[str, Any]) -> OptimizationSolveRunFacet:
    objective = facts.get("objective")
    return OptimizationSolveRunFacet(
        service=facts.get("service"),
        runId=None if facts.get("run_id") is None else str(facts["run_id"]),
        status=facts.get("status"),
        objective=objective
        if isinstance(objective, int | float) and not isinstance(objective, bool)
        else None,
    )
