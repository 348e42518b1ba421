"""Output files that are never seen half written.

`write_atomic` writes one file under a temporary name and renames it into place. `write_together`
does that for files that only make sense as a set (the spec and its flags): every new file is
written first, then a journal names the renames, then they are done. A process killed before the
journal leaves the previous set untouched; one killed during the renames leaves a journal that
`finish_pending` (called by every reader of the set) completes, so a reader sees the old set or
the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

JOURNAL = ".write_together.json"


def write_atomic(path: pathlib.Path, data: str | bytes) -> None:
    path = pathlib.Path(path)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        pathlib.Path(partial).unlink(missing_ok=True)
        raise


def write_together(folder: pathlib.Path, files: dict[str, str]) -> None:
    """Write `files` (name -> text) into `folder` as one unit."""
    folder = pathlib.Path(folder)
    finish_pending(folder)
    staged = {}
    try:
        for name, text in files.items():
            fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".partial")
            staged[name] = partial
            with os.fdopen(fd, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        write_atomic(folder / JOURNAL, json.dumps({"renames": {pathlib.Path(p).name: n for n, p in staged.items()}}))
    except BaseException:
        for partial in staged.values():
            pathlib.Path(partial).unlink(missing_ok=True)
        raise
    finish_pending(folder)


def finish_pending(folder: pathlib.Path) -> None:
    """Complete the renames of a `write_together` that was interrupted after its journal."""
    journal = pathlib.Path(folder) / JOURNAL
    try:
        renames = json.loads(journal.read_text())["renames"]
    except (OSError, ValueError, KeyError):
        journal.unlink(missing_ok=True)
        return
    for partial, name in renames.items():
        if (pathlib.Path(folder) / partial).exists():
            os.replace(pathlib.Path(folder) / partial, pathlib.Path(folder) / name)
    journal.unlink(missing_ok=True)
