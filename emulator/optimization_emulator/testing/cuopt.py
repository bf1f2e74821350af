"""Test support for cuOpt on NVCF and the self-hosted cuOpt server: plain HTTP clients for the
emulator, the docs' tiny problems, and an independent checker of routing answers.

Standard library and ``requests`` only (like ``testing.emulator``), so that tests and demos can use
it without the emulator's solver dependencies.

    with EmulatorProcess() as emulator:
        nvcf = NvcfClient(emulator.url, emulator.api_key)
        answer = nvcf.invoke(TINY_ROUTING).json()["response"]
        check_routing(TINY_ROUTING, answer["response"])
"""

from __future__ import annotations

import base64
import itertools
import math
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

#: The tiny LP of the cuOpt docs: x = 1.8, y = 0, objective -0.36.
TINY_LP: dict[str, Any] = {
    "csr_constraint_matrix": {"offsets": [0, 2, 4], "indices": [0, 1, 0, 1], "values": [3.0, 4.0, 2.7, 10.1]},
    "constraint_bounds": {"upper_bounds": [5.4, 4.9], "lower_bounds": ["ninf", "ninf"]},
    "objective_data": {"coefficients": [-0.2, 0.1], "scalability_factor": 1.0, "offset": 0.0},
    "variable_bounds": {"upper_bounds": ["inf", "inf"], "lower_bounds": [0.0, 0.0]},
    "maximize": False,
    "solver_config": {"tolerances": {"optimality": 0.0001}},
}
#: The tiny routing problem of the cuOpt docs (2 locations, 2 vehicles at depot 0): cost 2.
TINY_ROUTING: dict[str, Any] = {
    "cost_matrix_data": {"data": {"0": [[0, 1], [1, 0]]}},
    "task_data": {"task_locations": [0, 1]},
    "fleet_data": {"vehicle_locations": [[0, 0], [0, 0]]},
    "solver_config": {"time_limit": 1},
}
ASSET_HEADERS = {
    "Content-Type": "application/octet-stream",
    "x-amz-meta-nvcf-asset-description": "Optimization-data",
}


class _Tripwire:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def pickle_tripwire(marker: Path, protocol: int = 4) -> bytes:
    """A pickle of a problem whose *unpickling* creates ``marker``: proof that nobody unpickled it."""
    return pickle.dumps({"data": _Tripwire(marker)}, protocol=protocol)


class NvcfClient:
    """Raw NVCF calls against the emulator (responses are returned, never raised)."""

    def __init__(self, base_url: str, token: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = {**({"Authorization": f"Bearer {self.token}"} if auth else {}), **kwargs.pop("headers", {})}
        return requests.request(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)

    def get_token(
        self, client_id: str, secret: str, scope: str = "invoke_function list_functions"
    ) -> requests.Response:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return requests.post(
            self.base_url + "/token",
            data={"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": f"Basic {basic}"},
            timeout=self.timeout,
        )

    def functions(self) -> list[dict[str, Any]]:
        response = self.request("GET", "/v2/nvcf/functions")
        response.raise_for_status()
        return response.json()["functions"]

    def function_id(self) -> str:
        return self.functions()[0]["id"]

    def invoke(
        self,
        data: Any = None,
        *,
        assets: list[str] | None = None,
        poll: int | None = 30,
        function: str | None = None,
        version: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """POST the exec envelope; ``body`` replaces the default ``{"data": data}`` requestBody."""
        header: dict[str, Any] = {}
        if poll is not None:
            header["pollDurationSeconds"] = poll
        if assets:
            header["inputAssetReferences"] = assets
        path = f"/v2/nvcf/exec/functions/{function or self.function_id()}"
        if version:
            path += f"/versions/{version}"
        request_body = dict(body) if body is not None else {"data": data, "client_version": "custom"}
        return self.request("POST", path, json={"requestHeader": header, "requestBody": request_body})

    def status(self, req_id: str, poll: int | None = None) -> requests.Response:
        headers = {"NVCF-POLL-SECONDS": str(poll)} if poll is not None else {}
        return self.request("GET", f"/v2/nvcf/exec/status/{req_id}", headers=headers)

    def create_asset(
        self, content_type: str = "application/octet-stream", description: str = "Optimization-data"
    ) -> dict[str, Any]:
        response = self.request(
            "POST", "/v2/nvcf/assets", json={"contentType": content_type, "description": description}
        )
        response.raise_for_status()
        return response.json()

    def upload_asset(self, data: bytes) -> str:
        """Creates an asset and PUTs ``data`` the thin client's way; returns the asset id."""
        asset = self.create_asset()
        put = requests.put(asset["uploadUrl"], data=data, headers=ASSET_HEADERS, timeout=self.timeout)
        put.raise_for_status()
        return asset["assetId"]


class CuOptServerClient:
    """Raw calls to the emulator's self-hosted cuOpt server API (``/cuopt``); responses are returned,
    never raised. JSON by default (``Accept: application/json``, ``CLIENT-VERSION: custom``), as a
    JSON-only client must send them on every call (the server's wildcard default is msgpack)."""

    JSON_HEADERS = {"Accept": "application/json", "CLIENT-VERSION": "custom"}

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any):
        merged = {**self.JSON_HEADERS, **(headers or {})}  # a None value: requests sends no such header
        return requests.request(method, self.base_url + path, headers=merged, timeout=self.timeout, **kwargs)

    def submit(self, problem: Any = None, *, params: Mapping[str, Any] | None = None, **kwargs: Any):
        """``POST /cuopt/request`` with ``problem`` as JSON (or ``data=``/``headers=`` as given)."""
        if problem is not None:
            kwargs["json"] = problem
        return self.request("POST", "/cuopt/request", params=params, **kwargs)

    def submit_id(self, problem: Any, **kwargs: Any) -> str:
        response = self.submit(problem, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["reqId"]

    def solution(self, req_id: str, **kwargs: Any):
        return self.request("GET", f"/cuopt/solution/{req_id}", **kwargs)

    def wait(self, req_id: str, timeout: float = 60, **kwargs: Any):
        """The first answer to ``GET /cuopt/solution/{id}`` that is not exactly ``{"reqId"}``."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.solution(req_id, **kwargs)
            pending = response.status_code == 200 and response.json() == {"reqId": req_id}
            if not pending:
                return response
            assert time.monotonic() < deadline, f"job {req_id} still pending after {timeout}s"
            time.sleep(0.02)

    def solve(self, problem: Any, **kwargs: Any) -> dict[str, Any]:
        """Submits ``problem`` and returns the done envelope (asserting a 200)."""
        response = self.wait(self.submit_id(problem, **kwargs))
        assert response.status_code == 200, response.text
        return response.json()

    def status(self, req_id: str, **kwargs: Any):
        return self.request("GET", f"/cuopt/request/{req_id}?status", **kwargs)

    def abort(self, req_id: str, **kwargs: Any):
        return self.request("DELETE", f"/cuopt/request/{req_id}", **kwargs)

    def delete(self, req_id: str, **kwargs: Any):
        return self.request("DELETE", f"/cuopt/solution/{req_id}", **kwargs)

    def incumbents(self, req_id: str, **kwargs: Any):
        return self.request("GET", f"/cuopt/solution/{req_id}/incumbents", **kwargs)

    def log(self, req_id: str, frombyte: int = 0, **kwargs: Any):
        return self.request("GET", f"/cuopt/log/{req_id}", params={"frombyte": frombyte}, **kwargs)


def check_routing(
    problem: Mapping[str, Any], response: Mapping[str, Any], tol: float = 1e-6
) -> dict[str, Any]:
    """Checks a routing answer against its problem, recomputing everything from the matrices.

    Every task served exactly once (or listed as dropped), routes start and end at the vehicles'
    locations, capacities and time windows (with waiting) respected, and ``objective_values.cost``
    equal to the cost of the routes. Returns the ``solver_response``; raises AssertionError.
    """
    answer = response["solver_response"]
    assert answer["status"] == 0, answer
    tasks, fleet = problem["task_data"], problem["fleet_data"]
    n_tasks, n_veh = len(tasks["task_locations"]), len(fleet["vehicle_locations"])
    names = tasks.get("task_ids") or [str(i) for i in range(n_tasks)]
    vehicle_ids = fleet.get("vehicle_ids") or [str(v) for v in range(n_veh)]
    types = fleet.get("vehicle_types")
    costs = problem["cost_matrix_data"]["data"]
    times = (problem.get("travel_time_matrix_data") or {}).get("data") or costs
    served: list[int] = []
    total = 0.0
    for vid, route in answer["vehicle_data"].items():
        v = vehicle_ids.index(vid)
        key = str(types[v]) if types else next(iter(costs))
        cost, travel = costs[key], times.get(key, costs[key])
        start, end = fleet["vehicle_locations"][v]
        visit = [i for i, kind in enumerate(route["type"]) if kind != "Depot"]
        order = [names.index(route["task_id"][i]) for i in visit]
        skip_first = (fleet.get("skip_first_trips") or [False] * n_veh)[v]
        drop_return = (fleet.get("drop_return_trips") or [False] * n_veh)[v]
        locations = (
            [start] * (not skip_first)
            + [tasks["task_locations"][t] for t in order]
            + [end] * (not drop_return)
        )
        assert route["route"] == locations, (vid, route)
        total += sum(cost[a][b] for a, b in itertools.pairwise(locations))
        _check_schedule(problem, v, order, travel, skip_first, drop_return, tol)
        for d, capacity in enumerate(fleet.get("capacities") or []):
            load = max(itertools.accumulate(tasks["demand"][d][t] for t in order))
            assert load <= capacity[v] + tol, f"vehicle {vid} carries {load} > {capacity[v]} (dimension {d})"
        served += order
    dropped = answer["dropped_tasks"]["task_index"]
    assert sorted(served + dropped) == list(range(n_tasks)), "every task is served exactly once or dropped"
    assert math.isclose(answer["objective_values"]["cost"], total, rel_tol=1e-9, abs_tol=tol), (total, answer)
    assert answer["num_vehicles"] == len(answer["vehicle_data"])
    return answer


def _check_schedule(problem, v, order, travel, skip_first, drop_return, tol) -> None:
    tasks, fleet = problem["task_data"], problem["fleet_data"]
    windows = tasks.get("task_time_windows")
    service = tasks.get("service_times") or [0.0] * len(tasks["task_locations"])
    if isinstance(service, Mapping):
        service = service[str((fleet.get("vehicle_types") or [0])[v])]
    begin, close = (fleet.get("vehicle_time_windows") or [[0, math.inf]] * len(fleet["vehicle_locations"]))[v]
    t, here = begin, fleet["vehicle_locations"][v][0]
    for i, task in enumerate(order):
        there = tasks["task_locations"][task]
        if i or not skip_first:
            t += travel[here][there]
        if windows:
            assert t <= windows[task][1] + tol, (
                f"task {task} reached at {t}, after its window {windows[task]}"
            )
            t = max(t, windows[task][0])
        t += service[task]
        here = there
    if not drop_return:
        t += travel[here][fleet["vehicle_locations"][v][1]]
    assert t <= close + tol, f"vehicle {v} ends at {t}, after its window end {close}"
