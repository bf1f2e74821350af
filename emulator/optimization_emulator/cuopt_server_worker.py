"""What a self-hosted cuOpt job does in its own solver process (never on the event loop).

One process per job, so that aborting a running job can stop exactly its solver (``SIGKILL``, as
the real server terminates its solver process). The process reads the job's input (the request
body, or a ``CUOPT-DATA-FILE``), decodes it by its Content-Type (never unpickling), solves it with
:func:`optimization_emulator.cuopt.solve` — the same HiGHS and routing solvers that serve NVCF —
and leaves in the job's directory:

* ``result``: the done envelope ``{"response", "reqId", "warnings"?, "notes"?}``, encoded in the type
  chosen at submission;
* ``outcome.json``: how it ended — HTTP status, message, problem kind, and (legacy server with a
  result directory) the ``{"result_file", "format", ...}`` answer when the result went to a file;
* ``incumbents.jsonl``: one line per improving MIP solution, while it solves (``incumbent_solutions``);
* the HiGHS log at ``log_path`` (``solver_logs``).

The server only reads these files; nothing but the small :class:`ServerJob` crosses processes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from optimization_emulator.cuopt_server_codec import FORMATS, encode

OUTCOME = "outcome.json"
RESULT = "result"
INCUMBENTS = "incumbents.jsonl"


@dataclasses.dataclass(frozen=True)
class ServerJob:
    req_id: str
    job_dir: str
    input_path: str
    content_type: str  # of the input
    accept: str  # the answer type chosen at submission
    legacy: bool
    validation_only: bool = False
    warnings: tuple[str, ...] = ()
    log_path: str | None = None
    incumbents: bool = False
    #: Legacy server with a result directory: (directory, file name, threshold in bytes, file mode).
    result_file: tuple[str, str, int, int] | None = None


def envelope(req_id: str, response: Any, warnings: list[str], notes: list[str]) -> dict[str, Any]:
    """The done answer; like the real server, ``warnings`` and ``notes`` only when non-empty."""
    body: dict[str, Any] = {"response": response, "reqId": req_id}
    if warnings:
        body["warnings"] = warnings
    if notes:
        body["notes"] = notes
    return body


def file_answer(name: str, mime: str, warnings: list[str], notes: list[str], always: bool) -> dict[str, Any]:
    """What a client gets instead of a result written to a file (``always``: the proxy's way of
    listing ``warnings`` and ``notes`` even when empty)."""
    answer: dict[str, Any] = {"result_file": name, "format": FORMATS[mime]}
    if warnings or always:
        answer["warnings"] = warnings
    if notes or always:
        answer["notes"] = notes
    return answer


def problem_kind(problem: Any) -> str:
    """``lp``, ``milp``, ``batch`` or ``routing`` (for the counters)."""
    from optimization_emulator.cuopt.schema import classify

    if classify(problem) == "routing":
        return "routing"
    if isinstance(problem, list):
        return "batch"
    return "milp" if "I" in [str(t).upper() for t in problem.get("variable_types") or []] else "lp"


def validate(problem: Any, legacy: bool) -> tuple[dict[str, Any], list[str], list[str]]:
    """Checks ``problem`` as the solver would: (response, warnings, notes) of a validation-only job.

    The legacy server answers routing with ``{"msg": "Input is Valid"}``; what an LP's validation
    response holds is not documented, so it is empty here (both servers note ``Input is valid``).
    """
    from optimization_emulator.cuopt import solve

    answer = solve(problem, action="cuOpt_Validator")
    response = answer["response"] if legacy and problem_kind(problem) == "routing" else {}
    return response, answer["warnings"], ["Input is valid"]


def run(job: ServerJob) -> None:
    """Runs ``job`` to its outcome; every failure becomes an outcome, never an exception."""
    from optimization_emulator.cuopt import CuOptError, solve
    from optimization_emulator.cuopt.decode import decode_typed
    from optimization_emulator.cuopt.lp import SolveObserver

    directory = Path(job.job_dir)
    outcome: dict[str, Any] = {"status": 200, "message": "", "kind": None}
    try:
        try:
            problem = decode_typed(Path(job.input_path).read_bytes(), job.content_type)
        except CuOptError as exc:
            if not exc.message.startswith("unable to load"):
                exc.message = f"unable to load optimization data stream, {exc.message}"
            raise
        outcome["kind"] = problem_kind(problem)
        warnings = list(job.warnings)
        if job.validation_only:
            response, more, notes = validate(problem, job.legacy)
        else:
            observer = SolveObserver(
                log_path=job.log_path,
                on_incumbent=_incumbent_writer(directory / INCUMBENTS) if job.incumbents else None,
            )
            answer = solve(problem, observer=observer)
            response, more, notes = answer["response"], answer["warnings"], answer["notes"]
        warnings += more
        outcome.update(warnings=warnings, notes=notes)  # for a result file's answer
        data = encode(envelope(job.req_id, response, warnings, notes), job.accept)
        outcome["size"] = len(data)
        if job.result_file is not None and len(data) >= job.result_file[2]:
            from optimization_emulator.cuopt_server_files import write_result_file

            folder, name, _threshold, mode = job.result_file
            write_result_file(Path(folder), name, data, mode)
            outcome["file_answer"] = file_answer(name, job.accept, warnings, notes, always=False)
        else:
            _write(directory / RESULT, data)
    except CuOptError as exc:
        outcome.update(status=exc.status, message=exc.message)
    except Exception as exc:  # noqa: BLE001 - the real server answers 500 for anything unexpected
        outcome.update(status=500, message=f"cuOpt failed: {type(exc).__name__}: {exc}")
    _write(directory / OUTCOME, json.dumps(outcome).encode())


def _incumbent_writer(path: Path):
    handle = path.open("a", encoding="utf-8")

    def write(solution: list[float], cost: float, bound: float | None) -> None:
        handle.write(json.dumps({"solution": solution, "cost": cost, "bound": bound}) + "\n")
        handle.flush()

    return write


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
