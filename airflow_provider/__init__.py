"""Apache Airflow provider for remote optimization solvers.

Sends optimization problems of any size to Nextmv Cloud and to NVIDIA cuOpt on NVIDIA Cloud
Functions (NVCF), waits for them without holding a worker slot (deferrable triggers), and hands the
solution files to downstream tasks. The local emulator of these services, running real solvers on
the CPU so DAGs can be run and tested offline, is a distribution of its own
(``airflow-provider-optimization-emulator``): a production install carries no test server.

This module stays import-light on purpose: Airflow's provider discovery imports it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
