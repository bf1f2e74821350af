"""The ``solution_summary`` of a Nextmv run, from its ``/metadata`` answer (pure functions).

Nextmv itself only says succeeded / failed / canceled; what the solver found is what the app
reports, which Nextmv copies from the app's output into the run's metadata: the ``metrics``
convention (a free-form object) or the older ``statistics`` convention (``result.value`` is the
objective, ``result.custom`` free-form). The summary reads, first match wins:

* objective: ``metrics.objective`` / ``metrics.value`` / ``metrics.result.value`` /
  ``metrics.result.objective``, then ``statistics.result.value``;
* solver status word: ``metrics.status`` / ``metrics.solver.status`` / ``metrics.result.status``,
  then ``statistics.result.custom.status`` (``optimal``, ``infeasible``, ``time_limit``…);
* bound and gap: ``best_bound`` / ``bound`` and ``gap`` / ``mip_gap`` at the same places;
* solve time: ``statistics.result.duration``, ``statistics.run.duration``, then the run's
  ``execution_duration`` (milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider.events.summary import SolutionSummary, SolveStatus, finite_number, status_from_word

SERVICE = "nextmv"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _first(places: list[Any], pick: Any) -> Any:
    for place in places:
        value = pick(place)
        if value is not None:
            return value
    return None


def _places(meta: Mapping[str, Any]) -> list[Any]:
    """Where an app's own figures live: metrics, its ``result`` and ``solver`` parts, then statistics."""
    metrics, statistics = meta.get("metrics"), meta.get("statistics")
    return [
        metrics,
        _get(metrics, "result"),
        _get(metrics, "solver"),
        _get(statistics, "result"),
        _get(statistics, "result", "custom"),
    ]


def _number_at(keys: tuple[str, ...]) -> Any:
    def pick(place: Any) -> float | None:
        if not isinstance(place, Mapping):
            return None
        return next((n for k in keys if (n := finite_number(place.get(k))) is not None), None)

    return pick


def _word(place: Any) -> SolveStatus | None:
    return status_from_word(place.get("status")) if isinstance(place, Mapping) else None


def app_status(meta: Mapping[str, Any]) -> SolveStatus | None:
    """The solver status the app reported (metrics, then statistics), or None."""
    return _first(_places(meta), _word)


def app_objective(meta: Mapping[str, Any]) -> float | None:
    """The objective the app reported: ``metrics`` first, then ``statistics.result.value``."""
    places = _places(meta)
    found = _first(places[:2], _number_at(("objective", "value")))
    return found if found is not None else _first(places[3:4], _number_at(("value",)))


def solve_seconds(meta: Mapping[str, Any]) -> float | None:
    statistics = meta.get("statistics")
    for path in (("result", "duration"), ("run", "duration")):
        if (value := finite_number(_get(statistics, *path))) is not None:
            return value
    for key in ("execution_duration", "duration"):
        if millis := finite_number(meta.get(key)):
            return millis / 1000.0
    return None


def _text(value: Any) -> str | None:
    return str(value)[:200] if isinstance(value, (str, int)) and value != "" else None


def nextmv_summary(
    metadata_response: Mapping[str, Any] | None,
    *,
    app_id: str,
    run_id: str,
    run_status: SolveStatus,
    link: str | None = None,
    output_paths: tuple[str, ...] | list[str] = (),
    message: str = "",
) -> SolutionSummary:
    """The summary of a finished run. ``run_status`` is what the run's outcome says (succeeded →
    :attr:`SolveStatus.SUCCEEDED`, failed, canceled, timeout…); for a succeeded run the app's own
    status word, when it reports one, replaces it."""
    meta = metadata_response.get("metadata") if isinstance(metadata_response, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    status = run_status
    if run_status is SolveStatus.SUCCEEDED:
        status = app_status(meta) or SolveStatus.SUCCEEDED
    places = _places(meta)
    metrics = meta.get("metrics")
    return SolutionSummary(
        service=SERVICE,
        run_id=run_id,
        status=status,
        objective=app_objective(meta),
        best_bound=_first(places, _number_at(("best_bound", "bound", "solution_bound"))),
        gap=_first(places, _number_at(("gap", "mip_gap", "relative_gap"))),
        solve_time_s=solve_seconds(meta),
        output_paths=tuple(output_paths),
        link=link,
        message=message,
        app_id=app_id,
        instance_id=_text(meta.get("application_instance_id")),
        version_id=_text(meta.get("application_version_id")),
        execution_class=_text(meta.get("execution_class")),
        metrics=dict(metrics) if isinstance(metrics, Mapping) and metrics else None,
    )
