"""Written solve outputs as Airflow asset events, and input/output URIs as hook lineage.

One call at the end of every operator's and sensor's completion path,
:func:`record_output_assets`, makes a solve visible to Airflow and to OpenLineage:

* **Asset events.** An ``Asset`` among the task's ``outlets`` whose URI is a written path (or a
  folder that contains one) gets the solve's ``extra`` on the event Airflow records for it when
  the task succeeds. An ``AssetAlias`` among the outlets receives one ``Asset(<written path>)``
  per written path, for output URIs that are templated and so cannot be declared up front.
* **Hook lineage.** Input and written output URIs go to Airflow's hook lineage collector, which the
  OpenLineage provider reads when a task ends (no user code, no extractor). Without a lineage
  reader (no OpenLineage provider) the collector is a no-op.

Paths are compared and reported in one canonical form (:func:`asset_uri`): local paths become
``file:///<absolute path>``; remote URIs lose their query string, user info and fragment (a
presigned URL's signature must never name an asset) and any trailing ``/``.

``extra`` is whatever the caller has (the operators pass the ``solution_summary``'s
:meth:`~airflow_provider.events.summary.SolutionSummary.asset_extra`):
only its scalar fields (str, int, float, bool, None) are kept, so an asset event stays small and
never carries the solution, metrics tables or path lists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

log = logging.getLogger(__name__)

#: Attribute of the task where the last recorded extra is kept, for OpenLineage run facets.
SOLVE_EXTRA_ATTR = "_solve_extra"


def asset_uri(path: str) -> str:
    """The canonical asset URI of a path or URI (see the module docstring)."""
    parts = urlsplit(str(path))
    scheme = parts.scheme.lower() if len(parts.scheme) > 1 else ""  # "C:" is a drive, not a scheme
    if scheme in ("", "file"):
        local = parts.path if scheme == "file" else str(path)
        absolute = os.path.abspath(os.path.expanduser(local))
        return "file://" + absolute
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def covers(asset: str, written: str) -> bool:
    """Whether a declared asset URI names the written URI, or a folder the written URI is in."""
    asset, written = asset_uri(asset), asset_uri(written)
    return written == asset or written.startswith(asset.rstrip("/") + "/")


def small_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scalar fields of ``extra`` (see the module docstring)."""
    return {
        str(k): v for k, v in (extra or {}).items() if v is None or isinstance(v, str | int | float | bool)
    }


def record_output_assets(
    context: Context | None,
    task: Any,
    output_paths: Iterable[str] | None,
    extra: Mapping[str, Any] | None,
    inputs: Iterable[str | None] = (),
) -> list[str]:
    """Turn a finished solve's written paths into asset events and hook lineage; return their URIs.

    :param context: the task context; ``None`` means the current one (sensor completion paths
        that have none at hand). Only read when the task declares outlets.
    :param task: the operator or sensor: its ``outlets`` are matched, its ``hook`` (if it has
        one) is the lineage context, and ``extra`` is kept on it for OpenLineage run facets.
    :param output_paths: what the task wrote (the ``output_paths`` it pushes).
    :param extra: the solve's facts (the operators pass ``SolutionSummary.asset_extra()``).
    :param inputs: input URIs the task read (``None`` entries, i.e. inline inputs, are skipped).
    """
    written = [asset_uri(p) for p in output_paths or ()]
    facts = small_extra(extra)
    setattr(task, SOLVE_EXTRA_ATTR, facts)
    outlets = list(getattr(task, "outlets", None) or ())
    if outlets:
        _record_outlet_events(context, outlets, written, facts)
    _report_hook_lineage(task, [asset_uri(u) for u in inputs if u], written, facts)
    return written


def _record_outlet_events(
    context: Context | None, outlets: list[Any], written: list[str], facts: dict[str, Any]
) -> None:
    from airflow.providers.common.compat.sdk import Asset, AssetAlias

    if context is None or "outlet_events" not in context:  # a hand-built context: the task's own
        from airflow.providers.common.compat.sdk import get_current_context

        context = get_current_context()
    events = context["outlet_events"]
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            for uri in written:
                events[outlet].add(Asset(uri), extra=dict(facts))
        elif isinstance(outlet, Asset):
            if any(covers(outlet.uri, uri) for uri in written):
                events[outlet].extra.update(facts)
            else:
                log.warning(
                    "Outlet %s names none of the written outputs %s: Airflow still records its event, "
                    "without the solve's extra. Declare the written file (or its folder), or use an "
                    "AssetAlias for templated output URIs.",
                    outlet.uri,
                    written,
                )


def _report_hook_lineage(task: Any, inputs: list[str], written: list[str], facts: dict[str, Any]) -> None:
    """Hand the URIs to Airflow's hook lineage collector; lineage never fails a finished solve."""
    if not inputs and not written:
        return
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

        collector = get_hook_lineage_collector()
        lineage_context = getattr(task, "hook", task)
        for uri in inputs:
            collector.add_input_asset(lineage_context, uri=uri)
        for uri in written:
            collector.add_output_asset(lineage_context, uri=uri, asset_extra=dict(facts))
    except Exception:  # noqa: BLE001 - reporting lineage is best effort, the solve already succeeded
        log.warning("Could not report hook lineage for %s", written, exc_info=True)
