"""Copy a remote job's own log into the task log: bounded (the last N bytes) and redacted.

Written by the worker when a solve ends (in deferrable mode on resume): trigger logs are hard to
find, and a solver's warnings are what a user needs when a result looks wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from airflow_provider.utils.redact import redact_text


def tail_text(text: str, max_bytes: int) -> tuple[str, int]:
    """The last ``max_bytes`` bytes of ``text`` (whole UTF-8 characters), and how many were dropped."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= max_bytes:
        return text, 0
    kept = data[len(data) - max_bytes :].decode("utf-8", errors="ignore")
    return kept, len(data) - len(kept.encode("utf-8"))


def log_remote_text(logger: logging.Logger | Any, title: str, text: str, max_bytes: int) -> None:
    """Write ``text`` (a remote log) to ``logger`` as one block: a header, the redacted tail, a footer."""
    if max_bytes <= 0 or not text or not text.strip():
        return
    kept, dropped = tail_text(text, max_bytes)
    note = f" (last {max_bytes:,} bytes; {dropped:,} earlier bytes not shown)" if dropped else ""
    body = redact_text(kept.rstrip("\n"), limit=max_bytes + 1024)
    logger.info("----- %s%s -----\n%s\n----- end of %s -----", title, note, body, title)


def log_remote_lines(logger: logging.Logger | Any, title: str, lines: Iterable[str], max_bytes: int) -> None:
    """:func:`log_remote_text` of a list of messages (cuOpt notes or warnings), one per line."""
    log_remote_text(logger, title, "\n".join(str(line) for line in lines if line), max_bytes)
