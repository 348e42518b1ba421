"""`tune --config JOB.yaml`: the command line. Bad input: one line on stderr, exit 2."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tune", description="Autotune IREE CPU dispatches of a model.")
    parser.add_argument("--config", required=True, help="job config (YAML), e.g. configs/cnn.yaml")
    parser.add_argument("--output", help="reports folder (default: the config's `output`, else ./reports)")
    parser.add_argument("--max-minutes", type=float, help="stop searching after this long; export what was found")
    parser.add_argument("--quiet", action="store_true", help="no progress display (CI, nightly jobs)")
    parser.add_argument("--search-only", action="store_true",
                        help="a helper worker on a shared storage: run trials, leave export to the main process")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        job = load_config(args.config, output_override=args.output)
    except ConfigError as exc:
        print(f"tune: config error: {exc}", file=sys.stderr)
        return 2
    try:
        job.report_dir.mkdir(parents=True, exist_ok=True)
        (job.report_dir / ".write_test").touch()
        (job.report_dir / ".write_test").unlink()
    except OSError as exc:
        print(f"tune: cannot write the output folder {job.report_dir}: {exc.strerror}", file=sys.stderr)
        return 2
    handlers: list[logging.Handler] = [logging.FileHandler(job.report_dir / "tune.log")]
    if args.verbose:
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s")
    import warnings

    import optuna
    import sqlalchemy

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from . import iree
    from ._pipeline import run_job
    from .frontend import FrontendError

    try:
        result = run_job(job, quiet=args.quiet, max_minutes=args.max_minutes, search_only=args.search_only)
    except ConfigError as exc:
        print(f"tune: config error: {exc}", file=sys.stderr)
        return 2
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"tune: storage {job.storage.split('@')[-1]} unusable: {reason}", file=sys.stderr)
        logging.getLogger("schedtune").exception("storage failed")
        return 1
    except OSError as exc:
        print(f"tune: {exc.strerror or exc} ({exc.filename or 'I/O'}); finished trials are saved", file=sys.stderr)
        logging.getLogger("schedtune").exception("I/O failed")
        return 1
    except (iree.ToolError, FrontendError) as exc:
        print(f"tune: {str(exc).splitlines()[0]}", file=sys.stderr)
        logging.getLogger("schedtune").exception("job failed")
        return 1
    except KeyboardInterrupt:
        print("tune: interrupted; finished trials are saved, run the same command to resume", file=sys.stderr)
        return 130
    if args.search_only:
        print(f"{job.name}: search done ({result.compiles} compiles); trials per target: {result.summary['trials']}")
        return 0
    e2e = result.summary["end_to_end"]
    for warning in result.summary.get("busy_warnings") or []:
        print(f"tune: warning: {warning}", file=sys.stderr)
    print(
        f"{job.name}: {e2e['speedup']:.2f}x end to end ({e2e['default_median_ms']:.2f} -> {e2e['tuned_median_ms']:.2f} ms), "
        f"{result.compiles} compiles, {result.summary['seconds']:.0f} s; report: {result.report_dir / 'report.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
