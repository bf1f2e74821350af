"""The emulator distribution's pytest plugin, used the way a DAG author would: a test file of their
own, run by a separate pytest process, with nothing but the installed plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_plugin_fixtures_point_the_default_connections_at_a_live_emulator(tmp_path):
    (tmp_path / "test_user_dag.py").write_text(
        textwrap.dedent(
            """
            import os, json

            def test_connections(optimization_emulator, optimization_connections):
                assert optimization_connections == {"nextmv": "nextmv_default", "cuopt": "cuopt_default"}
                conn = json.loads(os.environ["AIRFLOW_CONN_NEXTMV_DEFAULT"])
                assert conn["host"] == optimization_emulator.url

                from airflow_provider.hooks.nextmv import NextmvHook
                ok, message = NextmvHook().test_connection()
                assert ok, message
                assert optimization_emulator.requests_log(limit=5)
            """
        )
    )
    env_home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={
            **os.environ,
            "AIRFLOW_HOME": str(env_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        },
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
