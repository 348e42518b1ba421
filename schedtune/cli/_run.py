"""`tune run --config JOB.yaml` (or `tune --config JOB.yaml`): one tuning job."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from ..config import load_config
from ..errors import ConfigError, SchedtuneError
from ..redaction import RedactingFilter, quiet_http_loggers, redact


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="job config (YAML), e.g. configs/cnn.yaml")
    parser.add_argument("--output", help="reports folder (default: the config's `output`, else ./reports)")
    parser.add_argument("--max-minutes", type=float, help="stop searching after this long; export what was found")
    parser.add_argument("--quiet", action="store_true", help="no progress display (CI, nightly jobs)")
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="a helper worker on a shared storage: run trials, leave export to the main process",
    )
    parser.add_argument(
        "--from-history",
        action="store_true",
        help="no search: try IREE's default and the nearest configs of finished studies and imported "
        "records (tune db import) per target, check them, confirm end to end, export",
    )
    parser.add_argument("-v", "--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    try:
        job = load_config(args.config, output_override=args.output)
    except ConfigError as exc:
        print(f"tune: config error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.from_history:
        job = dataclasses.replace(job, search=dataclasses.replace(job.search, from_history=True))
    try:
        job.report_dir.mkdir(parents=True, exist_ok=True)
        (job.report_dir / ".write_test").touch()
        (job.report_dir / ".write_test").unlink()
    except OSError as exc:
        print(f"tune: cannot write the output folder {job.report_dir}: {exc.strerror}", file=sys.stderr)
        return 2
    # A full disk must not turn every later log line into a traceback on stderr: the one-line
    # error is what the user reads, and tune.log is best effort.
    logging.raiseExceptions = False
    handlers: list[logging.Handler] = [logging.FileHandler(job.report_dir / "tune.log")]
    if args.verbose:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.addFilter(RedactingFilter())
    quiet_http_loggers()
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s")
    import warnings

    import optuna
    import sqlalchemy

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from ..job import run_job

    log = logging.getLogger("schedtune")
    try:
        result = run_job(job, quiet=args.quiet, max_minutes=args.max_minutes, search_only=args.search_only)
    except SchedtuneError as exc:
        prefix = "config error: " if isinstance(exc, ConfigError) else ""
        print(redact(f"tune: {prefix}{(str(exc).splitlines() or [type(exc).__name__])[0]}"), file=sys.stderr)
        log.exception("job failed")
        return exc.exit_code
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(redact(f"tune: storage {job.storage.split('@')[-1]} unusable: {reason}"), file=sys.stderr)
        log.exception("storage failed")
        return 1
    except OSError as exc:
        print(f"tune: {exc.strerror or exc} ({exc.filename or 'I/O'}); finished trials are saved", file=sys.stderr)
        log.exception("I/O failed")
        return 1
    except KeyboardInterrupt:
        print("tune: interrupted; finished trials are saved, run the same command to resume", file=sys.stderr)
        return 130
    if args.search_only:
        print(f"{job.name}: search done ({result.compiles} compiles); trials per target: {result.summary['trials']}")
        return 0
    summary = result.summary
    for warning in summary.get("busy_warnings") or []:
        print(f"tune: warning: {warning}", file=sys.stderr)
    for label, why in (summary.get("proposer_fallbacks") or {}).items():
        print(
            f"tune: warning: {label}: the {job.proposer.kind} proposer failed ({why}); heuristic proposals used",
            file=sys.stderr,
        )
    from ..report._write import headline

    plain = headline(summary).replace("**", "").replace("`", "")
    print(
        f"{job.name}: {plain} {result.compiles} compiles, {summary['seconds']:.0f} s; "
        f"report: {result.report_dir / 'report.md'}"
    )
    return 0
