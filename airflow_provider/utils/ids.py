"""One validator for every identifier that names a path segment or a file: run, request, asset,
app and function ids, whether a service chose them or a (templated) task argument carries them.

A service answering ``"run_id": "../outside/x"`` must not decide where the worker writes, and an id
of ``..`` must not move a request to another endpoint (``/runs/..`` → ``/runs``). Ids are checked
*before* they are used, so nothing is sent or written with a bad one; real ids (UUIDs, Nextmv's
``latest-…`` run ids, NVCF's request ids) are plain tokens well inside these rules.
"""

from __future__ import annotations

import re

from airflow_provider.exceptions import UnsafeIdentifierError

MAX_ID_LENGTH = 200
#: Control characters (C0, DEL, C1) and the path separators of every platform.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")


def safe_id(value: object, what: str) -> str:
    """``value`` as a string, if it can name exactly one path segment; else :class:`UnsafeIdentifierError`.

    Refused: empty or blank, ``.`` and ``..``, ``/`` or ``\\``, control characters (NUL, CR, LF...),
    leading/trailing whitespace, more than ``MAX_ID_LENGTH`` characters, non-strings.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UnsafeIdentifierError(f"{what} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise UnsafeIdentifierError(f"{what} is empty")
    shown = repr(text[:80])
    if text != text.strip():
        raise UnsafeIdentifierError(f"{what} {shown} has leading or trailing whitespace")
    if text in (".", ".."):
        raise UnsafeIdentifierError(f"{what} {shown} is a relative path segment, not an id")
    if len(text) > MAX_ID_LENGTH:
        raise UnsafeIdentifierError(f"{what} is {len(text)} characters long (at most {MAX_ID_LENGTH})")
    if _FORBIDDEN.search(text):
        raise UnsafeIdentifierError(f"{what} {shown} contains a path separator or a control character")
    return text
