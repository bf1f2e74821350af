"""The one event schema of Nextmv waits, shared by the trigger, the operator and the sensor.

The synchronous wait builds the same events from the same metadata, so deferrable and
non-deferrable modes end in exactly the same completion code. Events carry ids, a status and a
short message only: they pass through Airflow's metadata database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider.exceptions import ProtocolError
from airflow_provider.protocol.nextmv import RunStatus, run_error_message, run_status

MAX_MESSAGE_CHARS = 4000


class RunEventStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    #: The wait's own deadline passed; the waiter cancels the run, then fails.
    TIMEOUT = "timeout"
    #: Polling itself failed (service unreachable after retries, unexpected answer).
    ERROR = "error"


_FROM_RUN_STATUS = {
    RunStatus.SUCCEEDED: RunEventStatus.SUCCEEDED,
    RunStatus.FAILED: RunEventStatus.FAILED,
    RunStatus.CANCELED: RunEventStatus.CANCELED,
}


@dataclass(frozen=True)
class NextmvRunEvent:
    status: RunEventStatus
    app_id: str
    run_id: str
    message: str = ""

    def to_payload(self) -> dict[str, str]:
        return {
            "status": self.status.value,
            "app_id": self.app_id,
            "run_id": self.run_id,
            "message": self.message[:MAX_MESSAGE_CHARS],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> NextmvRunEvent:
        """Validate a trigger event: a lost or garbled payload must never fall through to success."""
        if not isinstance(payload, Mapping):
            raise ProtocolError(f"Nextmv trigger returned no usable event: {payload!r}")
        try:
            status = RunEventStatus(payload.get("status"))
        except ValueError:
            raise ProtocolError(f"Nextmv trigger returned an unknown event status: {payload!r}") from None
        run_id, app_id = payload.get("run_id"), payload.get("app_id")
        if not run_id or not app_id:
            raise ProtocolError(f"Nextmv trigger event lacks run_id/app_id: {payload!r}")
        return cls(
            status=status, app_id=str(app_id), run_id=str(run_id), message=str(payload.get("message") or "")
        )


def event_from_metadata(app_id: str, run_id: str, metadata: Mapping[str, Any]) -> NextmvRunEvent | None:
    """The terminal event for a run's metadata, or None while it is still queued/running."""
    status = run_status(metadata)
    if not status.is_terminal:
        return None
    message = "" if status is RunStatus.SUCCEEDED else run_error_message(metadata)
    return NextmvRunEvent(_FROM_RUN_STATUS[status], app_id, run_id, message)


def timeout_event(app_id: str, run_id: str, timeout_desc: str) -> NextmvRunEvent:
    return NextmvRunEvent(
        RunEventStatus.TIMEOUT, app_id, run_id, f"Nextmv run {run_id} did not finish within {timeout_desc}"
    )
