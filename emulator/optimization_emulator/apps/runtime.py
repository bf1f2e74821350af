"""The app side of the emulator's app contract, shared by the built-in demo apps.

The emulator runs an app the way Nextmv Cloud runs a decision app: as a program. Input arrives on
stdin (or as files under ``$NEXTMV_INPUT_DIR`` for multi-file runs), options arrive as a JSON object
of strings in ``$NEXTMV_OPTIONS``, the output goes to stdout (or into ``$NEXTMV_OUTPUT_DIR``), and
stderr is the run log. A non-zero exit fails the run with the last lines of stderr as its error.

The helpers here keep the demo apps honest about that contract: native solver libraries print
banners on file descriptor 1, so :func:`run_app` points fd 1 at stderr for the whole solve and
writes the output through a saved copy of the real stdout.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

#: Exit status of an app that was given input it cannot use.
EXIT_BAD_INPUT = 2

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class InputError(Exception):
    """The run's input or options cannot be used; the message is shown as the run's error."""


def parse_duration(text: str) -> float:
    """Seconds from a Nextmv-style duration option: ``"5"``, ``"5s"``, ``"500ms"``, ``"2m"``."""
    match = _DURATION.match(text)
    if not match:
        raise InputError(f"invalid duration {text!r}: use seconds like '5', '5s', '500ms' or '2m'")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def options() -> dict[str, str]:
    """The run's options (``$NEXTMV_OPTIONS``, a JSON object of strings; empty when unset)."""
    raw = os.environ.get("NEXTMV_OPTIONS") or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"NEXTMV_OPTIONS is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError("NEXTMV_OPTIONS must be a JSON object")
    return {str(key): str(val) for key, val in value.items()}


def float_option(opts: dict[str, str], name: str, default: float) -> float:
    """A numeric option, with a clear error naming the option when it is not a number."""
    if name not in opts:
        return default
    try:
        return float(opts[name])
    except ValueError:
        raise InputError(f"option {name}={opts[name]!r} is not a number") from None


def read_input(model: type[pydantic.BaseModel]) -> Any:
    """The run's JSON input, validated into ``model``.

    Multi-file runs (``$NEXTMV_INPUT_DIR`` set) read ``input.json`` from that folder instead of stdin.
    """
    input_dir = os.environ.get("NEXTMV_INPUT_DIR")
    if input_dir:
        path = Path(input_dir, "input.json")
        if not path.is_file():
            raise InputError(f"multi-file input must contain input.json (found: {_listing(input_dir)})")
        raw = path.read_bytes()
    else:
        raw = sys.stdin.buffer.read()
    if not raw.strip():
        raise InputError("no input: expected a JSON document on stdin")
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise InputError(_describe_validation_error(exc)) from None


def _listing(folder: str) -> str:
    names = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    return ", ".join(names[:20]) or "nothing"


def _describe_validation_error(exc: pydantic.ValidationError) -> str:
    problems = []
    for error in exc.errors()[:10]:
        if error["type"] == "json_invalid":
            return f"input is not valid JSON: {error['msg']}"
        where = ".".join(str(part) for part in error["loc"]) or "input"
        problems.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(problems)
    suffix = f" (and {more} more problems)" if more > 0 else ""
    return "invalid input: " + "; ".join(problems) + suffix


def log(message: str) -> None:
    """One line in the run log (stderr)."""
    print(message, file=sys.stderr, flush=True)


def run_app(solve: Callable[[], dict[str, Any]], write_files: Callable[[Path, dict[str, Any]], None]) -> int:
    """Runs ``solve`` and delivers its output; returns the process exit status.

    The output goes to stdout as JSON, or, when ``$NEXTMV_OUTPUT_FORMAT`` is ``multi-file``, through
    ``write_files(output_dir, output)``. Bad input exits with :data:`EXIT_BAD_INPUT` and a one-line
    ``error: ...`` on stderr, which the emulator reports as the run's error.
    """
    real_stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else writing to fd 1 (solver banners) lands in the run log
    sys.stdout = sys.stderr
    started = time.monotonic()
    try:
        output = solve()
    except InputError as exc:
        log(f"error: {exc}")
        return EXIT_BAD_INPUT
    if os.environ.get("NEXTMV_OUTPUT_FORMAT") == "multi-file":
        output_dir = Path(os.environ.get("NEXTMV_OUTPUT_DIR") or "outputs")
        output_dir.mkdir(parents=True, exist_ok=True)
        write_files(output_dir, output)
    else:
        with real_stdout:
            json.dump(output, real_stdout, indent=2)
            real_stdout.write("\n")
    log(f"done in {time.monotonic() - started:.3f}s")
    return 0


def run_statistics(duration: float, value: float | None, **custom: Any) -> dict[str, Any]:
    """The ``statistics`` block Nextmv apps print (schema v1)."""
    return {
        "schema": "v1",
        "run": {"duration": round(duration, 6), "iterations": custom.pop("iterations", 0)},
        "result": {"value": value, "duration": round(duration, 6), "custom": custom},
    }
