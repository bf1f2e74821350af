"""One client measurement in a fresh interpreter: ``python -m benchmarks.probe CASE 'ARGS_JSON'``
(``benchmarks.common.probe`` runs it).

Each case warms up first (imports, sessions, the same transfer path on a small payload), then the
peak-RSS counter is reset (``/proc/self/clear_refs`` ← 5, which sets VmHWM to the current RSS) and
the measured work runs. The answer, one JSON line on stdout: ``wall`` (seconds), ``growth``
(VmHWM − VmRSS before, bytes), ``rss`` (VmRSS before), ``cpu`` (process CPU seconds) and the case's
own figures.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import cpu_seconds, process_cpu
from optimization_emulator.testing.memory import proc_status, reset_peak_rss


def measure(work: Callable[[], dict[str, Any] | None], servers: dict[str, int]) -> dict[str, Any]:
    """Run ``work`` with the peak-RSS counter reset; ``servers`` (name → pid) get their CPU % measured
    over the same window."""
    base = reset_peak_rss()
    server_cpu = {name: cpu_seconds(pid) for name, pid in servers.items()}
    cpu, started = process_cpu(), time.perf_counter()
    extra = work() or {}
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "growth": proc_status("VmHWM") - base,
        "rss": base,
        "cpu": process_cpu() - cpu,
        "servers": {
            name: 100 * (cpu_seconds(pid) - server_cpu[name]) / wall for name, pid in servers.items()
        },
        **extra,
    }


class TaskInstance:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _submit(app: str, uri: str, task_id: str) -> str:
    from airflow_provider.operators.nextmv import NextmvRunOperator

    op = NextmvRunOperator(task_id=task_id, app_id=app, input_uri=uri, wait_for_completion=False)
    return op.execute({"ti": TaskInstance()})


def upload(args: dict[str, Any]) -> dict[str, Any]:
    """The operator's upload path: ``NextmvRunOperator(input_uri=...).execute`` (no wait)."""
    _submit(args["app"], args["warmup_uri"], "warm")  # over 5 MiB: the same presigned path
    return measure(lambda: {"run_id": _submit(args["app"], args["uri"], "big")}, args["pids"])


def download(args: dict[str, Any]) -> dict[str, Any]:
    """``NextmvHook.download_output`` of a finished run to a local path or ``s3://``."""
    from airflow_provider.hooks.nextmv import NextmvHook

    hook = NextmvHook()
    hook.download_output(args["app"], args["warmup_run"], args["warmup_target"])
    return measure(
        lambda: {"paths": hook.download_output(args["app"], args["run_id"], args["target"])}, args["pids"]
    )


def sink_upload(args: dict[str, Any]) -> dict[str, Any]:
    """The provider's upload (``NextmvHook.transfers.put`` of the streamed, JSON-checked file) to a bare sink."""
    from airflow_provider.hooks.nextmv import NextmvHook
    from airflow_provider.utils import uris
    from airflow_provider.utils.payloads import JsonShapeCheck, StreamingBody

    hook = NextmvHook()

    def put(path: str) -> None:
        with uris.open_input(path) as source:
            check = JsonShapeCheck(path)
            body = StreamingBody(source.chunks(), source.size, path, on_chunk=check.feed)
            hook.transfers.put(
                args["url"], body, headers={"Content-Type": "application/octet-stream"}, what="upload"
            )
            check.finish()

    put(args["warmup_path"])
    return measure(lambda: put(args["path"]), {"sink": args["sink_pid"]})


def sdk_upload(args: dict[str, Any]) -> dict[str, Any]:
    """The official SDK, as its docs show it: load the JSON, ``Application.new_run(input=...)``."""
    import os

    from nextmv.cloud import Application, Client

    client = Client(api_key=os.environ["BENCH_API_KEY"], url=os.environ["BENCH_URL"])
    app = Application(id=args["app"], client=client)
    with open(args["warmup_path"]) as f:
        app.new_run(input=json.load(f))  # over 5 MiB: the SDK's upload path, warmed

    def work() -> dict[str, Any]:
        with open(args["path"]) as f:
            data = json.load(f)
        return {"run_id": app.new_run(input=data)}

    return measure(work, args["pids"])


def cuopt_asset(args: dict[str, Any]) -> dict[str, Any]:
    """``prepare_problem`` (stream → zlib → temp file) + ``CuOptHook.submit`` (asset PUT, invoke)."""
    from airflow_provider.hooks.cuopt import CuOptHook
    from airflow_provider.hooks.cuopt_problems import prepare_problem

    hook = CuOptHook()
    function = hook.resolve_function(None, None, None)
    invoke, invoke_seconds = hook.invoke, []

    def timed_invoke(*a: Any, **kw: Any) -> Any:  # the invocation long-polls (≤ 1 s): not a transfer
        started = time.perf_counter()
        try:
            return invoke(*a, **kw)
        finally:
            invoke_seconds.append(time.perf_counter() - started)

    hook.invoke = timed_invoke  # type: ignore[method-assign]

    def solve(uri: str) -> dict[str, Any]:
        invoke_seconds.clear()
        started = time.perf_counter()
        with prepare_problem(problem_uri=uri) as prepared:
            staged = time.perf_counter()
            _invocation, asset_id = hook.submit(prepared, function, poll_seconds=1)
            done = time.perf_counter()
        hook.delete_asset_best_effort(asset_id)
        return {
            "compress_s": staged - started,
            "upload_s": done - staged - sum(invoke_seconds),
            "invoke_s": sum(invoke_seconds),
            "raw_bytes": prepared.raw_size,
            "asset_bytes": prepared.asset_size,
        }

    solve(args["warmup_uri"])
    return measure(lambda: solve(args["uri"]), args["pids"])


def cuopt_server_submit(args: dict[str, Any]) -> dict[str, Any]:
    """``CuOptSolveOperator(problem_uri=..., wait_for_completion=False)`` on a ``cuopt_server``
    connection: compression, then the streamed POST (timed apart by wrapping the hook's ``_call``)."""
    from airflow_provider.operators.cuopt import CuOptSolveOperator

    def solve(uri: str) -> dict[str, Any]:
        op = CuOptSolveOperator(
            task_id="bench",
            problem_uri=uri,
            output_uri="/tmp/unused/",
            wait_for_completion=False,
            cuopt_conn_id="cuopt_server_default",
        )
        hook, posts, sent = op.hook, [], []
        call = hook._call

        def timed(method: str, path: str, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(method, path, **kw)
            finally:
                if method == "POST":
                    posts.append(time.perf_counter() - started)
                    sent.append(len(kw["data"]))

        hook._call = timed  # type: ignore[method-assign]
        started = time.perf_counter()
        op.execute({"ti": TaskInstance()})
        total = time.perf_counter() - started
        return {"post_s": sum(posts), "compress_s": total - sum(posts), "sent_bytes": sum(sent)}

    solve(args["warmup_uri"])
    return measure(lambda: solve(args["uri"]), args["pids"])


def cuopt_server_result(args: dict[str, Any]) -> dict[str, Any]:
    """``CuOptServerHook.poll`` (capped read: a large answer is a finished result) then the streamed,
    parsed store of the result to ``output_uri``."""
    import os

    from airflow_provider.hooks.cuopt_server import CuOptServerHook

    os.environ["AIRFLOW_CONN_CUOPT_SERVER_BENCH"] = json.dumps(
        {"conn_type": "cuopt_server", "host": "127.0.0.1", "port": args["port"]}
    )
    hook = CuOptServerHook("cuopt_server_bench", keep_on_server=True)

    def store(out: str) -> dict[str, Any]:
        answer = hook.poll(args["req_id"])
        event = hook.outcome_event(answer, None, out)
        return {"ok": event.status.value == "succeeded", "state": answer.status.value}

    hook.test_connection()  # warm-up: imports, the session
    return measure(lambda: store(args["out"] + "/"), args["pids"])


CASES = {
    f.__name__: f
    for f in (
        upload,
        download,
        sink_upload,
        sdk_upload,
        cuopt_asset,
        cuopt_server_submit,
        cuopt_server_result,
    )
}


def main() -> None:
    """``CASE ARGS_JSON`` from the command line; prints the case's JSON answer."""
    print(json.dumps(CASES[sys.argv[1]](json.loads(sys.argv[2]))))


if __name__ == "__main__":
    main()
