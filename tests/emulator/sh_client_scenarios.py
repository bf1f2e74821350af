"""Scenarios for the official ``cuopt-sh-client`` 26.10.0, run by its own virtualenv's python.

Not a test module: ``test_cuopt_server_conformance`` runs ``python sh_client_scenarios.py NAME
PARAMS_JSON`` with ``.venv-shclient/bin/python`` (the client pins msgpack==1.2.1, which clashes with
the main environment). Only the client, numpy (its dependency) and the standard library are imported
here. The result is one JSON line on stdout (the client logs on stderr); the client itself is used
unmodified (``installed`` checks its files against the wheel's RECORD).

``batch`` runs several scenarios in one process (``{"runs": {key: [name, params]}}`` -> ``{key:
outcome}``, a failing scenario's outcome being ``{"scenario_error": ...}``), so that the suite starts
the client's interpreter a few times rather than once per check.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from cuopt_sh_client import CuOptServiceSelfHostClient, mime_type

TYPES = {
    "json": mime_type.JSON,
    "zlib": mime_type.ZLIB,
    "msgpack": mime_type.MSGPACK,
    "wildcard": mime_type.WILDCARD,
}


def client(params: dict[str, Any], **overrides: Any) -> CuOptServiceSelfHostClient:
    options = {
        "ip": "127.0.0.1",
        "port": str(params["port"]),
        "polling_interval": 0.05,
        "result_type": TYPES[params.get("result_type", "msgpack")],
        **overrides,
    }
    return CuOptServiceSelfHostClient(**options)


def problem(params: dict[str, Any]) -> Any:
    with open(params["problem"], encoding="utf-8") as handle:
        return json.load(handle)


def error_of(call, *args: Any, **kwargs: Any) -> dict[str, str]:
    try:
        value = call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the type is what the test checks
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": "none", "message": repr(value)}


def solution_fields(result: dict[str, Any]) -> dict[str, Any]:
    """A ``get_LP_solve`` result with its ``ThinClientSolution`` read out through its getters."""
    answer = result["response"]["solver_response"]
    solution = answer["solution"]
    out = {"reqId": result.get("reqId"), "status": answer["status"], "class": type(solution).__name__}
    if hasattr(solution, "get_primal_solution"):
        out.update(
            primal=[float(x) for x in solution.get_primal_solution()],
            objective=solution.get_primal_objective(),
            category=solution.get_problem_category(),
        )
        if out["category"] == "LP":
            out["solved_by"] = solution.get_solved_by()
            out["dual"] = [float(x) for x in solution.get_dual_solution()]
        else:
            out["milp_stats"] = {k: float(v) for k, v in solution.get_milp_stats().items()}
    return out


def lp(params: dict[str, Any]) -> Any:
    """A solve in ``result_type``; the client deletes the solution, so its id is unknown afterwards."""
    c = client(params)
    fields = solution_fields(c.get_LP_solve(problem(params)))
    return {**fields, "status_after": error_of(c.status, fields["reqId"])} if fields["reqId"] else fields


def numpy_arrays(params: dict[str, Any]) -> Any:
    """The problem's matrix and objective as numpy arrays (sent as msgpack-numpy maps), then the
    same problem with an object array, which msgpack-numpy sends as a pickle."""
    data = problem(params)
    matrix = data["csr_constraint_matrix"]
    numeric = {
        **data,
        "csr_constraint_matrix": {
            "offsets": np.array(matrix["offsets"], dtype=np.int32),
            "indices": np.array(matrix["indices"], dtype=np.int64),
            "values": np.array(matrix["values"], dtype=np.float64),
        },
        "objective_data": {
            **data["objective_data"],
            "coefficients": np.array(data["objective_data"]["coefficients"]),
        },
    }
    objects = {
        **data,
        "variable_types": np.array(["C"] * len(data["variable_bounds"]["lower_bounds"]), dtype=object),
    }
    c = client(params)
    return {"numeric": solution_fields(c.get_LP_solve(numeric)), "objects": error_of(c.get_LP_solve, objects)}


def installed(params: dict[str, Any]) -> Any:
    """The client's version, and its files that differ from the wheel's RECORD (none: unmodified)."""
    dist = importlib.metadata.distribution("cuopt-sh-client")
    changed = []
    for entry in dist.files or []:
        if entry.hash is None or entry.hash.mode != "sha256":
            continue
        digest = hashlib.sha256(Path(dist.locate_file(entry)).read_bytes()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.hash.value:
            changed.append(str(entry))
    checked = sum(1 for entry in dist.files or [] if entry.hash is not None)
    return {"version": dist.version, "files_checked": checked, "changed": changed}


def lp_dict(params: dict[str, Any]) -> Any:
    return client(params).get_LP_solve(problem(params), response_type="dict", **params.get("kwargs", {}))


def milp_callbacks(params: dict[str, Any]) -> Any:
    incumbents: list[float] = []
    lines: list[str] = []
    result = client(params).get_LP_solve(
        problem(params),
        incumbent_callback=lambda solution, cost: incumbents.append(cost),
        logging_callback=lines.extend,
    )
    return {**solution_fields(result), "incumbent_costs": incumbents, "log_lines": lines}


def routing(params: dict[str, Any]) -> Any:
    return client(params).get_optimized_routes(problem(params), **params.get("kwargs", {}))


def timeout_repoll(params: dict[str, Any]) -> Any:
    """The client's polling timeout expires (TimeoutError with the id), then ``repoll`` gets the result."""
    first = client(params, polling_timeout=params["polling_timeout"])
    try:
        first.get_LP_solve(problem(params))
    except TimeoutError as exc:
        pending = json.loads(str(exc))
    else:
        raise AssertionError("the solve did not time out")
    status = first.status(pending["reqId"])
    result = client(params, polling_timeout=120).repoll(pending)
    return {"pending": pending, "status_while_pending": status, **solution_fields(result)}


def status_delete(params: dict[str, Any]) -> Any:
    """Status strings, a result read twice (not consumed), ``delete_solution``, then 404s."""
    c = client(params)
    result = c.get_LP_solve(problem(params), response_type="dict", delete_solution=False)
    req_id = result["reqId"]
    return {
        "reqId": req_id,
        "status": c.status(req_id),
        "again": c.repoll(req_id, response_type="dict", delete_solution=False)["reqId"],
        "delete": c.delete_solution(req_id),
        "status_after": error_of(c.status, req_id),
        "repoll_after": error_of(c.repoll, req_id),
        "abort_finished": c.delete(result["reqId"]),
    }


def abort(params: dict[str, Any]) -> Any:
    """Submit (not waiting), tell the test the id, and once it says so abort the running job."""
    c = client(params, polling_timeout=0.2, timeout_exception=False)
    pending = c.get_LP_solve(problem(params), response_type="dict")
    print(json.dumps(pending), flush=True)
    sys.stdin.readline()  # the test has seen the solver process run
    counts = c.delete(pending["reqId"])
    return {
        "reqId": pending["reqId"],
        "counts": counts,
        "status": c.status(pending["reqId"]),
        "repoll": error_of(c.repoll, pending),
    }


def invalid(params: dict[str, Any]) -> Any:
    c = client(params)
    return {
        "lp": error_of(c.get_LP_solve, problem(params)),
        "routing": error_of(c.get_optimized_routes, {"fleet_data": {"vehicle_locations": [[0, 0]]}}),
        "unknown_status": error_of(c.status, "00000000-0000-4000-8000-000000000000"),
    }


def data_file(params: dict[str, Any]) -> Any:
    return solution_fields(client(params).get_LP_solve(params["path"], filepath=True))


def cached(params: dict[str, Any]) -> Any:
    c = client(params)
    entry = c.get_LP_solve(problem(params), cache=True, response_type="dict")
    return {"cache": entry, **solution_fields(c.get_LP_solve(entry["reqId"]))}


def validate(params: dict[str, Any]) -> Any:
    return client(params, only_validate=True).get_LP_solve(problem(params), response_type="dict")


def batch(params: dict[str, Any]) -> Any:
    outcomes = {}
    for key, (name, arguments) in params["runs"].items():
        try:
            outcomes[key] = run(name, {"port": params["port"], **arguments})
        except Exception:  # noqa: BLE001 - reported to the test that checks this scenario
            outcomes[key] = {"scenario_error": traceback.format_exc(limit=6)}
    return outcomes


def run(name: str, arguments: dict[str, Any]) -> Any:
    scenario = SCENARIOS[name]
    return error_of(scenario, arguments) if arguments.get("expect_error") else scenario(arguments)


SCENARIOS = {
    f.__name__: f
    for f in (
        lp,
        lp_dict,
        numpy_arrays,
        installed,
        batch,
        milp_callbacks,
        routing,
        timeout_repoll,
        status_delete,
        abort,
        invalid,
        data_file,
        cached,
        validate,
    )
}

if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], json.loads(sys.argv[2])), default=repr), flush=True)
