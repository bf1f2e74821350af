"""The log files of a local Airflow 3 stack's ``AIRFLOW_HOME``: where they are, and readable text.

Split from :mod:`optimization_emulator.testing.airflow_stack`; :class:`AirflowLogFiles` is a base of
:class:`~optimization_emulator.testing.airflow_stack.AirflowStack`, so its methods are methods of the
stack. Two kinds of files:

* task logs, ``logs/dag_id=…/run_id=…/task_id=…[/map_index=…]/attempt=N.log``, one JSON object a
  line, and next to them the triggerer's ``attempt=N.log.trigger.<job>.log`` for deferred tasks;
  the stack passes ``--skip-serve-logs``, so these local files are the only copy;
* each component's stdout/stderr, ``<component>.out``, appended to on every (re)start.

Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AirflowLogFiles", "format_log", "tail_file"]

# Keys repeated on every line of a task log (the task's identity) or rendered separately.
_LOG_CONTEXT_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "event",
        "logger",
        "error_detail",
        "filename",
        "lineno",
        "dag_id",
        "task_id",
        "run_id",
        "try_number",
        "map_index",
        "ti_id",
        "ti",
    }
)


def format_log(path: Path, limit: int | None = None) -> str:
    """Render an Airflow 3 log file (one JSON object per line) as readable text.

    Lines that are not JSON are kept as they are. ``limit`` keeps only the last lines.
    """
    out: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(rec, dict):
            out.append(line)
            continue
        ts = str(rec.get("timestamp", ""))[:23]
        level = str(rec.get("level", "")).upper()
        logger = rec.get("logger", "")
        text = f"{ts} {level:<7} {rec.get('event', '')}"
        if logger:
            text += f"  [{logger}]"
        extra = {k: v for k, v in rec.items() if k not in _LOG_CONTEXT_KEYS}
        if extra:
            text += " " + json.dumps(extra, default=str)
        out.append(text)
        for err in rec.get("error_detail") or []:
            if isinstance(err, dict):
                out.append(f"    {err.get('exc_type')}: {err.get('exc_value')}")
                for fr in err.get("frames") or []:
                    out.append(f"      {fr.get('filename')}:{fr.get('lineno')} in {fr.get('name')}")
    return "\n".join(out[-limit:] if limit else out)


def tail_file(path: Path, n: int) -> str:
    """The last ``n`` lines of ``path`` (read from its last 256 KiB only), or ``(no output)``."""
    if not path.exists():
        return "(no output)"
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        lines = f.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-n:])


class AirflowLogFiles:
    """Finds and renders the log files under ``home``: task logs in ``home/logs``, and the output of
    the ``components`` (the names :meth:`tails` shows, whether they ran or not).

    Paths are computed from the ids, not asked of the api-server, so they work while it is down.
    """

    def __init__(self, home: Path, components: Iterable[str]):
        self.home = home
        self.logs_folder = home / "logs"
        self.components = tuple(components)

    def _task_log_dir(self, dag_id: str, run_id: str, task_id: str, map_index: int | None) -> Path:
        d = self.logs_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return d / f"map_index={map_index}" if map_index is not None and map_index >= 0 else d

    def task_log_paths(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> list[Path]:
        """The task's own log files, ``attempt=N.log``, in attempt order."""
        d = self._task_log_dir(dag_id, run_id, task_id, map_index)
        return sorted((p for p in d.glob("attempt=*.log") if ".log.trigger." not in p.name), key=_attempt_key)

    def trigger_log_paths(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None
    ) -> list[Path]:
        """Logs written by the triggerer for the task's triggers, ``attempt=N.log.trigger.<job>.log``."""
        d = self._task_log_dir(dag_id, run_id, task_id, map_index)
        return sorted(d.glob("attempt=*.log.trigger.*.log"), key=_attempt_key)

    def task_log_text(
        self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None, limit: int | None = None
    ) -> str:
        """All task and trigger log files of a task, rendered readably, one section per file."""
        parts = []
        paths = sorted(
            self.task_log_paths(dag_id, run_id, task_id, map_index)
            + self.trigger_log_paths(dag_id, run_id, task_id, map_index),
            key=_attempt_key,
        )
        for p in paths:
            parts.append(f"----- {p.relative_to(self.home)}\n{format_log(p, limit)}")
        return "\n".join(parts) if parts else f"(no log files for {dag_id}/{run_id}/{task_id})"

    def tail(self, component: str, n: int = 40) -> str:
        """Last ``n`` lines of a component's stdout/stderr (``home/<component>.out``)."""
        return f"----- airflow {component} (last {n} lines)\n" + tail_file(self.home / f"{component}.out", n)

    def tails(self, n: int = 40) -> str:
        """:meth:`tail` of every component."""
        return "\n".join(self.tail(name, n) for name in self.components)


def _attempt_key(p: Path) -> tuple[int, str]:
    """Sort key of ``attempt=N.log[.trigger.<job>.log]``: by attempt number, then name."""
    head = p.name.split(".log", 1)[0]  # attempt=N
    try:
        return int(head.split("=", 1)[1]), p.name
    except (IndexError, ValueError):
        return 0, p.name
