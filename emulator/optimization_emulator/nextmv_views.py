"""JSON shapes of Nextmv Cloud resources, as the official ``nextmv`` SDK 1.13.0 parses them.

Field lists follow shared/reference/nextmv.md §8 (reconstructed from the SDK's pydantic models and the
docs' examples). Values the emulator has no real counterpart for (user e-mail, version id, execution
class, runtime) are fixed placeholders that say "emulator".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from optimization_emulator.config import AppSpec
from optimization_emulator.nextmv_runs import Run

USER_EMAIL = "emulator@localhost"
VERSION_ID = "emulator"
EXECUTION_CLASS = "emulator"
RUNTIME = "emulator"

# The v1 ``status`` knows only running, succeeded and failed (Nextmv docs' examples). A queued run
# reads as running, and a canceled run as failed: a v1 client must not take it for a success.
# 1.13.0 ignores ``status``; older SDKs required it.
_LEGACY_STATUS = {
    "queued": "running",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}


def rfc3339(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def application(app: AppSpec, created_at: dt.datetime) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name or app.id,
        "description": app.description,
        "type": "custom",
        "default_instance": app.default_instance,
        "default_experiment_instance": app.default_instance,
        "subscription_id": "",
        "locked": False,
        "created_at": rfc3339(created_at),
        "updated_at": rfc3339(created_at),
    }


def instance(app: AppSpec, instance_id: str, created_at: dt.datetime) -> dict[str, Any]:
    return {
        "id": instance_id,
        "application_id": app.id,
        "version_id": VERSION_ID,
        "name": instance_id,
        "description": f"{instance_id} instance of {app.id}",
        "locked": False,
        "created_at": rfc3339(created_at),
        "updated_at": rfc3339(created_at),
        "configuration": {
            "execution_class": EXECUTION_CLASS,
            "format": {"input": {"type": app.input_format}},
            "options": {},
            "secrets_collection_id": None,
            "queuing": None,
            "integration_id": None,
        },
    }


def _run_type() -> dict[str, str]:
    # Must be an object: the SDK dereferences metadata.run_type.run_type.
    return {"type": "standard", "definition_id": "", "reference_id": ""}


def run_information(run: Run) -> dict[str, Any]:
    """GET /runs/{id}/metadata (and the base of GET /runs/{id})."""
    options = dict(run.options)
    return {
        "id": run.id,
        "name": run.name,
        "description": run.description,
        "user_email": USER_EMAIL,
        "metadata": {
            "application_id": run.app.id,
            "application_instance_id": run.instance_id,
            "application_version_id": VERSION_ID,
            "created_at": rfc3339(run.created_at),
            "initiated_at": rfc3339(run.started_at),
            "duration": run.duration_ms,
            "execution_duration": run.execution_ms,
            "error": run.error,  # always a string: the SDK rejects null
            "input_size": float(run.input_size),
            "output_size": float(run.output_size),
            "format": {"input": {"type": run.input_format}, "output": {"type": run.output_format}},
            "status_v2": run.status,
            "status": _LEGACY_STATUS[run.status],
            "run_type": _run_type(),
            "execution_class": EXECUTION_CLASS,
            "runtime": RUNTIME,
            "options": {
                "active_options": options,
                "request_options": options,
                "options_summary": [
                    {"name": name, "value": value, "source": "request"} for name, value in options.items()
                ],
            },
            "statistics": run.statistics,  # copied from the app's output, as Nextmv does
            "metrics": run.metrics,
            "queuing_priority": None,
            "queuing_disabled": None,
            "secrets_collection_id": None,
            "tracking": None,
            "integration": None,
        },
    }


def run_list_item(run: Run) -> dict[str, Any]:
    """One entry of GET /runs (``nextmv.run.Run``)."""
    return {
        "id": run.id,
        "user_email": USER_EMAIL,
        "name": run.name,
        "description": run.description,
        "created_at": rfc3339(run.created_at),
        "application_id": run.app.id,
        "application_instance_id": run.instance_id,
        "application_version_id": VERSION_ID,
        "run_type": _run_type(),
        "execution_class": EXECUTION_CLASS,
        "runtime": RUNTIME,
        "status_v2": run.status,
        "status": _LEGACY_STATUS[run.status],
        "options": dict(run.options),
        "request_options": dict(run.options),
    }


def error_log(run: Run) -> dict[str, str]:
    """``error_log`` of a failed run's GET /runs/{id}."""
    return {"error": run.error, "stdout": run.stdout_tail, "stderr": run.stderr_tail}


def page(items: list[dict[str, Any]], items_key: str) -> dict[str, Any]:
    """One page in the SDK's ``pagereturn=true`` shape; the emulator always fits in one page."""
    return {items_key: items, "next_page_token": ""}
