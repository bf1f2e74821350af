"""Remembering a submitted remote run across task tries ("resume, don't resubmit").

On Airflow 3.3+ the run's ids go to the task state store (``context["task_state_store"]``), which
is scoped to (dag, run, task, map index) and so survives retries, right after submission and
*before* any waiting. A record says ``in_flight`` until the task completes; a retry after a worker
crash finds an in-flight record and re-attaches to the remote run, while a task cleared after
success starts afresh. Without a task state store (Airflow < 3.3) the operators fall back to
looking the run up on the service by the task's marker (see ``docs/reliability.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IN_FLIGHT = "in_flight"
COMPLETED = "completed"


def _store(context: Mapping[str, Any]) -> Any:
    return context.get("task_state_store")


def has_store(context: Mapping[str, Any]) -> bool:
    return _store(context) is not None


def remember(context: Mapping[str, Any], key: str, record: Mapping[str, Any]) -> None:
    """Record an in-flight remote run (no-op without a task state store)."""
    if (store := _store(context)) is not None:
        store.set(key, {**record, "state": IN_FLIGHT})


def in_flight(context: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The record of a run an earlier try left in flight, if any."""
    store = _store(context)
    record = store.get(key) if store is not None else None
    if isinstance(record, dict) and record.get("state") == IN_FLIGHT:
        return record
    return None


def completed(context: Mapping[str, Any], key: str) -> None:
    """Mark the run as done with: a later clear of this task submits a new run."""
    store = _store(context)
    record = store.get(key) if store is not None else None
    if isinstance(record, dict):
        store.set(key, {**record, "state": COMPLETED})


def task_identity(context: Mapping[str, Any]) -> tuple[str, str, str, int] | None:
    """(dag_id, task_id, run_id, map_index) of the running task instance, if known."""
    ti = context.get("ti")
    parts = [getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id")]
    if not all(isinstance(p, str) and p for p in parts):
        return None
    map_index = getattr(ti, "map_index", -1)
    return parts[0], parts[1], parts[2], int(map_index if isinstance(map_index, int) else -1)


def is_retry(context: Mapping[str, Any]) -> bool:
    try_number = getattr(context.get("ti"), "try_number", 1)
    return isinstance(try_number, int) and try_number > 1
