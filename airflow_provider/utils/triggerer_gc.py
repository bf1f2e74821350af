"""Opt-in: move the triggerer's start-up objects out of the garbage collector's way (``gc.freeze()``).

A triggerer process holds ~180,000 objects of Airflow's own; each *full* collection walks all of
them, stalling every trigger's event loop for 150–200 ms on a small machine (docs/benchmarks.md).
``gc.freeze()`` once, after start-up, puts them in a permanent generation, so full collections walk
only what the triggers allocate: the longest stall drops to ~30 ms with a thousand triggers.
Airflow's dag processor does the same after start-up; the triggerer does not (Airflow 3.3).

It is a process-wide change, so it is off unless the deployment asks for it::

    [optimization_provider]
    triggerer_gc_freeze = True     # or AIRFLOW__OPTIMIZATION_PROVIDER__TRIGGERER_GC_FREEZE=True

The cost: cyclic garbage among the objects alive at that moment is never collected (module-level
state lives for the whole process anyway), a one-off bounded by what exists when the first trigger
starts.
"""

from __future__ import annotations

import gc
import logging

SECTION = "optimization_provider"
OPTION = "triggerer_gc_freeze"

log = logging.getLogger(__name__)
_decided = False


def freeze_startup_objects_once() -> bool:
    """Called when a trigger starts; freezes once per process if configured. Returns True if it froze."""
    global _decided
    if _decided:
        return False
    _decided = True
    from airflow.providers.common.compat.sdk import conf

    if not conf.getboolean(SECTION, OPTION, fallback=False):
        return False
    # No gc.collect() first: it would itself be the very pause this avoids (a full walk of Airflow's
    # objects); the little garbage frozen with them is bounded to this one moment.
    gc.freeze()
    log.info(
        "gc.freeze(): %d start-up objects moved out of the collector's generations", gc.get_freeze_count()
    )
    return True
