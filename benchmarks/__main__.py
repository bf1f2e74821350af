"""``python -m benchmarks``: every benchmark in one run, a table on stdout and ``docs/benchmarks.md``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from benchmarks import cuopt_asset, cuopt_server, imports, transfers, triggerer
from benchmarks.common import MB, REPO, WORK, load_average, machine, services
from benchmarks.report import Report

SECTIONS = ("upload", "download", "cuopt", "cuopt_server", "triggerer", "imports")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add = parser.add_argument
    add("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    add("--repeat", type=int, default=3, help="measurements per transfer client (median reported; default 3)")
    add(
        "--sdk-repeat",
        type=int,
        default=1,
        help="measurements of the official SDK's upload (slow; default 1)",
    )
    add(
        "--upload-mb",
        type=float,
        default=500,
        help="Nextmv upload size, MB (default 500, the service's limit)",
    )
    add(
        "--download-mb",
        type=float,
        default=99.9,
        help="Nextmv output size, MB (default 99.9: just under the 100 MB download limit)",
    )
    add("--cuopt-mb", type=float, default=200, help="cuOpt problem size, MB (default 200)")
    add("--cuopt-result-mb", type=float, default=100, help="cuOpt server result size, MB (default 100)")
    add("--runs", type=int, default=1000, help="concurrent triggers (default 1000)")
    add("--spread", type=float, default=60, help="the runs end at random over this many seconds (default 60)")
    add("--poll-interval", type=float, default=1.0, help="trigger poll_interval, seconds (default 1)")
    add("--max-poll-interval", type=float, default=5.0, help="trigger max_poll_interval, seconds (default 5)")
    add(
        "--no-gc-freeze-diagnosis",
        dest="gc_freeze_diagnosis",
        action="store_false",
        help="skip the second triggerer run (with the provider's triggerer_gc_freeze setting; about 80 s)",
    )
    add("--import-repeat", type=int, default=7, help="fresh interpreters per imported module (default 7)")
    add("--output", default=str(REPO / "docs" / "benchmarks.md"), help="Markdown report ('' to skip)")
    add("--strict", action="store_true", help="exit with status 1 when a goal is missed")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(transfers.CURL) is None and {"upload", "download"} & set(args.sections):
        print("curl is needed for the transfer baselines", file=sys.stderr)
        return 2
    report = Report()
    load_before, started = load_average(), time.monotonic()
    print(f"{machine()}; load average {load_before:.2f}", flush=True)
    shutil.rmtree(WORK, ignore_errors=True)
    try:
        with services(WORK) as svc:
            if "upload" in args.sections:
                transfers.upload(
                    svc, report, size=int(args.upload_mb * MB), repeat=args.repeat, sdk_repeat=args.sdk_repeat
                )
            if "download" in args.sections:
                transfers.download(svc, report, size=int(args.download_mb * MB), repeat=args.repeat)
            if "cuopt" in args.sections:
                cuopt_asset.cuopt_asset(svc, report, size=int(args.cuopt_mb * MB), repeat=args.repeat)
            if "cuopt_server" in args.sections:
                cuopt_server.cuopt_server_submit(
                    svc, report, size=int(args.cuopt_mb * MB), repeat=args.repeat
                )
                cuopt_server.cuopt_server_result(
                    svc, report, size=int(args.cuopt_result_mb * MB), repeat=args.repeat
                )
            if "triggerer" in args.sections:
                for gc_freeze in (False, True)[: 1 + args.gc_freeze_diagnosis]:
                    triggerer.triggerer(
                        svc,
                        report,
                        runs=args.runs,
                        spread=args.spread,
                        poll_interval=args.poll_interval,
                        max_poll_interval=args.max_poll_interval,
                        gc_freeze=gc_freeze,
                    )
            if "imports" in args.sections:
                imports.imports(svc.env, report, repeat=args.import_repeat)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    took = time.monotonic() - started
    print("\n" + report.markdown_table())
    failed = report.failures()
    print(f"\n{len(failed)} goal(s) missed" if failed else "\nAll goals met", f"({took:.0f} s)")
    if args.output:
        command = (
            "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
        )
        report.write(
            REPO / args.output,  # an absolute --output stays as it is
            machine=machine(),
            load=(load_before, load_average()),
            took=took,
            command=command,
        )
        print(f"wrote {args.output}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
