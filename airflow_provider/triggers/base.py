"""The skeleton every trigger of this provider shares (after amazon's ``AwsBaseWaiterTrigger``).

Written once here: ``serialize()`` from the subclass's ``serialized_fields`` (primitives only, so a
rebuilt trigger continues exactly where the old one was), an absolute wall-clock deadline that holds
even against a slow answer (the whole wait runs under ``asyncio.timeout``), exactly one event, the
error event for anything unexpected (message redacted), and a best-effort ``on_kill``. A subclass is
its ``__init__``, :meth:`wait` and its three event builders.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.utils.redact import redact_text
from airflow_provider.utils.retry import short_error
from airflow_provider.utils.triggerer_gc import freeze_startup_objects_once


class TriggerOutcome(Protocol):
    """What a service's event schema offers the base: its status and its payload."""

    message: str

    def to_payload(self) -> dict[str, Any]: ...


class ProviderTrigger(BaseTrigger):
    """Base of the provider's triggers.

    :cvar serialized_fields: the constructor's keyword arguments, all primitives, ``end_time``
        (epoch seconds) among them.
    :cvar deadline_slack: seconds past ``end_time`` a call in flight may take to finish before the
        wait is cut (the deadline itself is enforced by the subclass's loop and each call's bound).
    """

    serialized_fields: ClassVar[tuple[str, ...]] = ()
    deadline_slack: ClassVar[float] = 30.0
    end_time: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "end_time" not in cls.serialized_fields:
            raise TypeError(f"{cls.__name__}.serialized_fields must name its kwargs, end_time included")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and primitive kwargs: what the triggerer stores and rebuilds the trigger from."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {name: getattr(self, name) for name in self.serialized_fields},
        )

    def remaining(self) -> float:
        """Seconds left until ``end_time`` (negative once it passed)."""
        return self.end_time - time.time()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait, settle, and emit exactly one event."""
        freeze_startup_objects_once()
        outcome = await self._guarded_wait()
        outcome = await self.settle(outcome)
        payload = outcome.to_payload()
        message = f" ({payload['message']})" if payload.get("message") else ""
        self.log.info("%s: %s%s", self.describe(), payload.get("status"), redact_text(message, 600))
        yield TriggerEvent(payload)

    async def _guarded_wait(self) -> TriggerOutcome:
        try:
            async with asyncio.timeout(max(0.0, self.remaining()) + self.deadline_slack) as scope:
                return await self.wait()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            if scope.expired():
                return self.timeout_event()
            return self.error_event("TimeoutError: a call timed out")
        except Exception as exc:  # one event, always: the task turns it into a clear error
            if self.remaining() <= 0:
                return self.timeout_event()
            return self.error_event(short_error(exc))

    async def wait(self) -> TriggerOutcome:
        """Poll until the remote job ends or ``end_time`` passes; return the terminal event."""
        raise NotImplementedError

    def timeout_event(self) -> TriggerOutcome:
        """The event for a deadline that passed."""
        raise NotImplementedError

    def error_event(self, message: str) -> TriggerOutcome:
        """The event for a wait that failed in itself (service unreachable, unexpected answer)."""
        raise NotImplementedError

    async def settle(self, outcome: TriggerOutcome) -> TriggerOutcome:
        """Clean-up once the wait ended (e.g. delete an input asset); returns the event to emit."""
        return outcome

    def describe(self) -> str:
        """How the log names what this trigger waits for."""
        return type(self).__name__

    async def on_kill(self) -> None:
        """Airflow 3.3+: a user marked the deferred task failed/success or cleared it."""
        try:
            await self.cancel_remote()
        except Exception as exc:  # best effort: the task is already being ended
            self.log.warning(
                "%s: could not clean up after the task was killed: %s", self.describe(), short_error(exc)
            )

    async def cancel_remote(self) -> None:
        """Stop or clean up the remote job (called by :meth:`on_kill`)."""
