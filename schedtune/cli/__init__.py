"""The `tune` command: one subcommand per job a user runs.

`tune --config X` (no subcommand) is `tune run --config X`. Bad input: one line on stderr and
a non-zero exit (2 for a bad config).
"""

from __future__ import annotations

import argparse
import sys

from . import _build, _db, _run

COMMANDS = {
    "run": (_run, "tune a model (the job file's settings)"),
    "build": (_build, "build a report's tuned module (.vmfb), checked against IREE's default build"),
    "compare": (None, "tuned IREE beside onnxruntime, PyTorch eager and torch.compile"),
    "db": (_db, "move tuning records between storages (versioned JSON lines)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tune", description="Autotune a model for IREE's CPU backend.")
    commands = parser.add_subparsers(dest="command", metavar="{run,build,compare,db}")
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if module is None:  # compare: its extras are imported only when it runs
            from ..compare import add_arguments
        else:
            add_arguments = module.add_arguments
        add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # the original form: tune --config X
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    if args.command == "compare":
        from ..compare import main as compare

        return compare(args)
    return COMMANDS[args.command][0].main(args)
