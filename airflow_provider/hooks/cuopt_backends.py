"""Which cuOpt backend a connection names: NVCF (type ``cuopt``) or a self-hosted server
(type ``cuopt_server``). ``CuOptSolveOperator``, ``CuOptSolveSensor`` and ``CuOptSolveTrigger`` are
the same for both; only the hook differs, chosen here from the connection's type, so a DAG switches
backend by changing ``cuopt_conn_id`` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.protocol.cuopt_server import CONN_TYPE as SERVER_CONN_TYPE
from airflow_provider.protocol.cuopt_server import SubmitOptions

if TYPE_CHECKING:
    from airflow_provider.hooks.cuopt import CuOptHook
    from airflow_provider.hooks.cuopt_server import CuOptServerHook

NVCF_CONN_TYPE = "cuopt"


def connection_type(conn_id: str) -> str:
    """The ``conn_type`` of an Airflow connection (``cuopt`` when it does not say)."""
    return (BaseHook.get_connection(conn_id).conn_type or NVCF_CONN_TYPE).strip().lower()


def cuopt_hook_for(
    conn_id: str, *, options: SubmitOptions | None = None, keep_on_server: bool = False, **kwargs: Any
) -> CuOptHook | CuOptServerHook:
    """The sync hook for ``conn_id``'s backend. Server-only settings (``options``,
    ``keep_on_server``) on an NVCF connection are refused, naming them."""
    kind = connection_type(conn_id)
    if kind == SERVER_CONN_TYPE:
        from airflow_provider.hooks.cuopt_server import CuOptServerHook

        return CuOptServerHook(conn_id, options=options, keep_on_server=keep_on_server, **kwargs)
    if kind != NVCF_CONN_TYPE:
        raise InvalidInputError(
            f"Connection {conn_id!r} has type {kind!r}; cuOpt tasks need a 'cuopt' (NVCF) or "
            f"'{SERVER_CONN_TYPE}' (self-hosted) connection."
        )
    if (options and not options.is_default) or keep_on_server:
        raise InvalidInputError(
            "validation_only, solver_logs, warmstart_id, initial_ids and keep_on_server apply to a "
            f"self-hosted cuOpt server only; connection {conn_id!r} is NVCF (type 'cuopt')."
        )
    from airflow_provider.hooks.cuopt import CuOptHook

    return CuOptHook(conn_id, **kwargs)
