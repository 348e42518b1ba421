"""`tune db export|import FILE`: tuning records in and out of a storage."""

from __future__ import annotations

import argparse
import sys

from ..config import load_config
from ..errors import ConfigError, SchedtuneError
from ..redaction import redact


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("export", "import"))
    parser.add_argument("file", help="history file (.jsonl)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the job whose storage to use")
    where.add_argument("--storage", help="a storage URL, e.g. sqlite:///reports/cnn/study.db")
    parser.add_argument("--output", help="with --config: its reports folder, as for tune")


def main(args: argparse.Namespace) -> int:
    import pathlib
    import warnings

    import optuna
    import sqlalchemy

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from .. import history
    from ..store import Cache

    try:
        storage = args.storage or load_config(args.config, output_override=args.output).storage
        path = pathlib.Path(args.file)
        sqlite_file = pathlib.Path(storage[len("sqlite:///") :]) if storage.startswith("sqlite:///") else None
        if args.action == "export":
            if sqlite_file is not None and not sqlite_file.is_file():
                raise ConfigError(f"no study database at {storage}")
            records = history.collect_records(storage)
            history.write_records(path, records)
            print(f"tune db: {len(records)} record(s) written to {path}")
        else:
            records = history.read_records(path)
            if sqlite_file is not None:  # a job that has not run yet: its folder comes first
                sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            added = history.import_records(Cache(storage), records)
            print(f"tune db: {added} new record(s) of {len(records)} imported into {redact(storage)}")
    except SchedtuneError as exc:
        prefix = "config error: " if isinstance(exc, ConfigError) else ""
        print(f"tune db: {prefix}{str(exc).splitlines()[0]}", file=sys.stderr)
        return exc.exit_code
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"tune db: storage unusable: {reason}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tune db: {exc.strerror or exc} ({exc.filename or 'I/O'})", file=sys.stderr)
        return 1
    return 0
