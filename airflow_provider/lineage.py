"""OpenLineage run facets for solves: the service's run/request id on the task's OpenLineage events.

The OpenLineage provider calls :meth:`SolveLineageMixin.get_openlineage_facets_on_complete` when a
task ends (success or failure). It returns no datasets on purpose: with none, the provider merges
what the task reported through hook lineage (:mod:`airflow_provider.assets`: input and output URIs)
into the same event, so datasets and facets come from one place each. The facets are

* ``externalQuery`` (OpenLineage's standard ``ExternalQueryRunFacet``): ``externalQueryId`` = the
  Nextmv run id or NVCF request id, ``source`` = ``<service>://<API host>``;
* ``optimizationSolve``: the scalar solve facts the task recorded (service, run id, status,
  objective) once it finished.

Everything OpenLineage is imported inside the method, which only the OpenLineage provider calls:
without it (extra ``openlineage`` not installed) this module costs one class definition.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from airflow_provider.assets import SOLVE_EXTRA_ATTR

#: Name of the custom run facet holding the solve's facts.
SOLVE_FACET = "optimizationSolve"


class SolveLineageMixin:
    """Adds OpenLineage run facets to an operator or sensor of one service.

    :cvar lineage_service: the service name (``nextmv``, ``cuopt``).
    :cvar lineage_id_attr: the attribute holding the run/request id once it is known.
    """

    lineage_service: ClassVar[str] = ""
    lineage_id_attr: ClassVar[str] = "run_id"

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_provider import _ol_facets

        facts = dict(getattr(self, SOLVE_EXTRA_ATTR, None) or {})
        external_id = facts.get("run_id") or _external_id(self)
        if not external_id:
            return OperatorLineage()
        run_facets: dict[str, Any] = {
            "externalQuery": _ol_facets.external_query(str(external_id), self._lineage_source()),
        }
        if facts:
            run_facets[SOLVE_FACET] = _ol_facets.solve_facet(facts)
        return OperatorLineage(run_facets=run_facets)

    def _lineage_source(self) -> str:
        """``<service>://<API host>``, from a connection the task already resolved, else ``<service>://``.

        The OpenLineage listener runs this in a fork of the task process by default, where a
        connection lookup would talk over the inherited supervisor channel: never look one up here.
        """
        hook = self.__dict__.get("hook")  # cached_property: present once the task used its hook
        settings = getattr(hook, "__dict__", {}).get("settings")
        try:
            host = urlsplit(settings.url("/")).netloc if settings is not None else ""
        except Exception:  # noqa: BLE001 - a facet never fails the task; the host is a nicety
            host = ""
        return f"{self.lineage_service}://{host}"


def _external_id(task: Any) -> str | None:
    """The run/request id of a task that did not finish, from its attribute (no XCom: see above)."""
    value = getattr(task, task.lineage_id_attr, None)
    return str(value) if value and str(value) not in ("None", "null") else None
