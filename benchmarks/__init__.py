"""Benchmarks of the provider against the local emulator, next to ``curl`` and the official SDK.

``python -m benchmarks`` (or ``make bench``) runs them all in one go — uploads, downloads, the
cuOpt asset path, a triggerer with a thousand runs and the import cost of the DAG-facing modules —
prints a table and writes ``docs/benchmarks.md``. Every client measurement runs in a fresh
subprocess (``benchmarks.probe``), with the peak-RSS counter reset right before the measured work.
"""
