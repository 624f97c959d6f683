"""Progress bars for the steps that answer many questions (evaluate, fuse): one bar per task, with its ETA."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


class Bars:
    """A rich Progress on the terminal; `add` gives each task a bar and the callback that advances it."""

    def __init__(self, progress):
        self.progress = progress

    def add(self, label: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(label, total=total)
        return lambda n: self.progress.update(task, advance=n)

    def print(self, text: str) -> None:
        """A line above the bars."""
        self.progress.console.print(text)


@contextmanager
def task_bars() -> Iterator[Bars]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        yield Bars(progress)
