"""`tune build --report reports/JOB -o model.vmfb`: the tuned module, built and checked."""

from __future__ import annotations

import argparse
import sys

from ..errors import SchedtuneError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", required=True, help="a finished job's report folder, e.g. reports/cnn")
    parser.add_argument("-o", "--output", required=True, help="the .vmfb to write")
    parser.add_argument(
        "--model", help="your own MLIR of the same model (default: the model the job tuned, from its report)"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the numeric check against IREE's default build")
    parser.add_argument(
        "--any-compiler", action="store_true", help="build even when iree-compile is not the report's version"
    )


def main(args: argparse.Namespace) -> int:
    from ..export import ExportedTuning, build_tuned

    try:
        export = ExportedTuning.read(args.report)
        built = build_tuned(
            export, args.output, model=args.model, check=not args.no_check, any_compiler=args.any_compiler
        )
    except SchedtuneError as exc:
        print(f"tune build: {(str(exc).splitlines() or [type(exc).__name__])[0]}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"tune build: {exc.strerror or exc} ({exc.filename or 'I/O'})", file=sys.stderr)
        return 1
    checked = (
        f"outputs match IREE's default build (worst relative error {built.worst_error:.1e})"
        if built.checked
        else "not checked"
    )
    speedup = f"; confirmed {export.speedup:.2f}x over the default when tuned" if export.speedup else ""
    print(f"tune build: {built.vmfb}: {checked}{speedup}")
    print(f"run it with: iree-run-module --module={built.vmfb} --function={export.entry} --device=local-task ...")
    return 0
