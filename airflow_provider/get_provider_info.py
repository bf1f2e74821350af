"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

``package-name`` must equal the distribution name, or discovery fails with ``ValueError``. The
connection form is declared here (``conn-fields`` / ``ui-field-behaviour``) so Airflow 3.2+ can
build it without importing the hooks.
"""

from __future__ import annotations

from typing import Any

from airflow_provider import __version__

NEXTMV = "Nextmv Cloud"
CUOPT = "NVIDIA cuOpt (NVCF)"
CUOPT_SERVER = "NVIDIA cuOpt (self-hosted)"

_TLS_FIELDS: dict[str, Any] = {
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "description": "Verify the service's TLS certificate (strongly recommended; default true).",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "description": "Path to a PEM CA bundle used instead of the system/certifi store.",
        "schema": {"type": ["string", "null"]},
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-optimization",
        "name": "Optimization (Nextmv Cloud, NVIDIA cuOpt)",
        "description": "Submit optimization problems of any size to Nextmv Cloud and NVIDIA cuOpt on NVCF, "
        "wait for them deferrably and hand the solution files to downstream tasks.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": NEXTMV,
                "external-doc-url": "https://docs.nextmv.io/",
                "tags": ["service"],
            },
            {
                "integration-name": CUOPT,
                "external-doc-url": "https://docs.nvidia.com/cuopt/",
                "tags": ["service"],
            },
            {
                "integration-name": CUOPT_SERVER,
                "external-doc-url": "https://docs.nvidia.com/cuopt/user-guide/latest/cuopt-server/index.html",
                "tags": ["software"],
            },
        ],
        "hooks": [
            {
                "integration-name": NEXTMV,
                "python-modules": ["airflow_provider.hooks.nextmv", "airflow_provider.hooks.nextmv_async"],
            },
            {
                "integration-name": CUOPT,
                "python-modules": ["airflow_provider.hooks.cuopt", "airflow_provider.hooks.cuopt_async"],
            },
            {
                "integration-name": CUOPT_SERVER,
                "python-modules": [
                    "airflow_provider.hooks.cuopt_server",
                    "airflow_provider.hooks.cuopt_server_async",
                ],
            },
        ],
        "operators": [
            {"integration-name": NEXTMV, "python-modules": ["airflow_provider.operators.nextmv"]},
            {"integration-name": CUOPT, "python-modules": ["airflow_provider.operators.cuopt"]},
        ],
        "sensors": [
            {"integration-name": NEXTMV, "python-modules": ["airflow_provider.sensors.nextmv"]},
            {"integration-name": CUOPT, "python-modules": ["airflow_provider.sensors.cuopt"]},
        ],
        "triggers": [
            {"integration-name": NEXTMV, "python-modules": ["airflow_provider.triggers.nextmv"]},
            {"integration-name": CUOPT, "python-modules": ["airflow_provider.triggers.cuopt"]},
        ],
        "connection-types": [
            {
                "connection-type": "nextmv",
                "hook-class-name": "airflow_provider.hooks.nextmv.NextmvHook",
                "hook-name": "Nextmv Cloud",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "API endpoint", "password": "API key"},
                    "placeholders": {"host": "https://api.cloud.nextmv.io", "password": "Nextmv API key"},
                },
                "conn-fields": {
                    "console_url": {
                        "label": "Console URL",
                        "description": "Base URL of the Nextmv console, used for the run link.",
                        "schema": {"type": ["string", "null"], "default": "https://cloud.nextmv.io"},
                    },
                    **_TLS_FIELDS,
                },
            },
            {
                "connection-type": "cuopt",
                "hook-class-name": "airflow_provider.hooks.cuopt.CuOptHook",
                "hook-name": "NVIDIA cuOpt (NVCF)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "NVCF endpoint", "password": "API key (SAK)"},
                    "placeholders": {"host": "https://api.nvcf.nvidia.com", "password": "nvapi-..."},
                },
                "conn-fields": {
                    "client_id": {
                        "label": "Client ID",
                        "description": "Client-credentials client id; used when no API key is set.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_secret": {
                        "label": "Client secret",
                        "description": "Client-credentials client secret.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "token_url": {
                        "label": "Token URL",
                        "description": "Client-credentials token endpoint.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "function_id": {
                        "label": "Function ID",
                        "description": "NVCF function id of cuOpt (wins over the function name).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "function_name": {
                        "label": "Function name",
                        "description": "NVCF function name; its newest ACTIVE version is used.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "function_version_id": {
                        "label": "Function version ID",
                        "description": "Pin one function version.",
                        "schema": {"type": ["string", "null"]},
                    },
                    **_TLS_FIELDS,
                },
            },
            {
                "connection-type": "cuopt_server",
                "hook-class-name": "airflow_provider.hooks.cuopt_server.CuOptServerHook",
                "hook-name": CUOPT_SERVER,
                "ui-field-behaviour": {
                    "hidden-fields": ["login"],
                    "relabeling": {
                        "host": "Server host",
                        "schema": "Scheme (http or https)",
                        "password": "Gateway auth header value",
                    },
                    "placeholders": {
                        "host": "cuopt.internal or https://cuopt.internal",
                        "port": "5000",
                        "schema": "http",
                        "password": "secret the gateway in front of the server expects (optional)",
                    },
                },
                "conn-fields": {
                    "auth_header_name": {
                        "label": "Gateway auth header name",
                        "description": "Header the gateway/ingress in front of the server checks (e.g. "
                        "Authorization, X-API-Key); its value is the password field. The server itself has "
                        "no authentication.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_version": {
                        "label": "Client version",
                        "description": "CLIENT-VERSION header; 'custom' skips the server's version check.",
                        "schema": {"type": ["string", "null"], "default": "custom"},
                    },
                    "result_dir": {
                        "label": "Shared result directory",
                        "description": "Local mount of the server's CUOPT_RESULT_DIR, to read results the "
                        "server writes to files (result_file answers). Leave empty if it is not shared.",
                        "schema": {"type": ["string", "null"]},
                    },
                    **_TLS_FIELDS,
                },
            },
        ],
        "config": {
            "optimization_provider": {
                "description": "Settings of the optimization provider (Nextmv Cloud, NVIDIA cuOpt).",
                "options": {
                    "triggerer_gc_freeze": {
                        "description": "Call gc.freeze() once in the triggerer process when the first of this "
                        "provider's triggers starts, so full garbage collections stop walking Airflow's own "
                        "start-up objects (longest event-loop stall with 1,000 triggers: ~180 ms -> ~30 ms). "
                        "Process-wide, hence off by default.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    }
                },
            }
        },
        "extra-links": [
            "airflow_provider.operators.nextmv.NextmvRunLink",
        ],
    }
