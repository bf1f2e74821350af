"""The one event schema of cuOpt waits, shared by the trigger, the operator and the sensor.

NVCF hands a finished result out exactly once, so whoever receives it (trigger, sync wait or
sensor poke) stores it at ``output_uri`` first and then reports the written paths here. Events
carry ids, a status, paths and a short message only: never the result itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from airflow_provider.exceptions import ProtocolError

MAX_MESSAGE_CHARS = 4000


class SolveEventStatus(str, Enum):
    #: Result stored at output_uri, and the solver found a solution.
    SUCCEEDED = "succeeded"
    #: Result stored, but the solver says infeasible / no solution.
    INFEASIBLE = "infeasible"
    #: NVCF reported the request errored or rejected (errorCode 910/911…), or an HTTP error ended it.
    FAILED = "failed"
    #: The wait's own deadline passed.
    TIMEOUT = "timeout"
    #: Polling itself failed (service unreachable after retries, unexpected answer, storage failure).
    ERROR = "error"


#: Outcomes the service itself decided (the request is over): a retry must not wait for it again.
ENDED_ON_SERVICE = frozenset(
    {SolveEventStatus.SUCCEEDED, SolveEventStatus.INFEASIBLE, SolveEventStatus.FAILED}
)


@dataclass(frozen=True)
class CuOptSolveEvent:
    status: SolveEventStatus
    req_id: str
    asset_id: str | None = None
    output_paths: tuple[str, ...] = field(default_factory=tuple)
    message: str = ""
    asset_deleted: bool = False
    #: The service's error code of a FAILED request (NVCF ``errorCode``: the container's HTTP
    #: status such as 400/422 for a problem cuOpt refused, or 9xx for a platform failure).
    error_code: int | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "req_id": self.req_id,
            "asset_id": self.asset_id,
            "output_paths": list(self.output_paths),
            "message": self.message[:MAX_MESSAGE_CHARS],
            "asset_deleted": self.asset_deleted,
            "error_code": self.error_code,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> CuOptSolveEvent:
        """Validate a trigger event: a lost or garbled payload must never fall through to success."""
        if not isinstance(payload, Mapping):
            raise ProtocolError(f"cuOpt trigger returned no usable event: {payload!r}")
        try:
            status = SolveEventStatus(payload.get("status"))
        except ValueError:
            raise ProtocolError(f"cuOpt trigger returned an unknown event status: {payload!r}") from None
        paths = payload.get("output_paths") or []
        if not payload.get("req_id") or not isinstance(paths, list):
            raise ProtocolError(f"cuOpt trigger event lacks req_id/output_paths: {payload!r}")
        if status is SolveEventStatus.SUCCEEDED and not paths:
            raise ProtocolError(f"cuOpt trigger reported success without a stored result: {payload!r}")
        return cls(
            status=status,
            req_id=str(payload["req_id"]),
            asset_id=payload.get("asset_id") or None,
            output_paths=tuple(str(p) for p in paths),
            message=str(payload.get("message") or ""),
            asset_deleted=bool(payload.get("asset_deleted")),
            error_code=_error_code(payload.get("error_code")),
        )

    def with_asset_deleted(self) -> CuOptSolveEvent:
        return replace(self, asset_deleted=True)


def _error_code(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stored_event(req_id: str, asset_id: str | None, stored: Any) -> CuOptSolveEvent:
    """The terminal event of a stored result (``stored.ok``, ``.paths``, ``.message``): what the
    solver said decides, whoever stored it and whenever (a retry finds a failure as a failure)."""
    status = SolveEventStatus.SUCCEEDED if stored.ok else SolveEventStatus.INFEASIBLE
    return CuOptSolveEvent(status, req_id, asset_id, tuple(stored.paths), stored.message)


def event_for(invocation: Any, asset_id: str | None, stored: Any = None) -> CuOptSolveEvent:
    """The terminal event for a non-pending answer (``stored``: the persisted result, if any).

    Shared by the sync wait, the sensor poke and the trigger so that every mode ends the same.
    """
    if stored is not None:
        return stored_event(invocation.req_id, asset_id, stored)
    return CuOptSolveEvent(
        SolveEventStatus.FAILED,
        invocation.req_id,
        asset_id,
        (),
        invocation.message,
        error_code=getattr(invocation, "error_code", None),
    )


def timeout_event(req_id: str, asset_id: str | None) -> CuOptSolveEvent:
    return CuOptSolveEvent(
        SolveEventStatus.TIMEOUT, req_id, asset_id, (), f"NVCF request {req_id} did not finish in time"
    )
