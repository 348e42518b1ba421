"""The console progress display (rich), or none with --quiet."""

from __future__ import annotations

import contextlib


class _NullProgress:
    def add(self, label: str, total: int) -> int:
        return 0

    def update(self, task: int, done: int, total: int, best_ms: float | None) -> None:
        pass


class _RichProgress:
    def __init__(self, progress) -> None:
        self._p = progress

    def add(self, label: str, total: int) -> int:
        return self._p.add_task(label, total=total, best="-")

    def update(self, task: int, done: int, total: int, best_ms: float | None) -> None:
        self._p.update(task, completed=done, best="-" if best_ms is None else f"{best_ms:.3f} ms")


@contextlib.contextmanager
def progress_display(quiet: bool):
    if quiet:
        yield _NullProgress()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    ) as progress:
        yield _RichProgress(progress)
