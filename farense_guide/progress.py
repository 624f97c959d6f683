"""Progress of a training run: one bar with ETA on a terminal, and a line per report, in pt-PT.

The line (step, loss, tokens/s, time left) is printed whether or not there is a terminal, so a log
(`nox -s all > log`, CI) shows that work is going on; rich draws no bar when the output is not a terminal.
TrainProgress is a training callback: the loop calls its hooks (steps/train.py's TrainingCallback).
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from farense_guide.pt_format import duration as pt_duration


class TrainProgress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.console = Console(stderr=True, soft_wrap=True)  # a report is one line, even in a log
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("passos"),
            TextColumn("perda {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("faltam"), TimeRemainingColumn(),
            console=self.console, disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("treino", total=total, completed=start, loss="—")
        self.validation_task = None
        self.total, self.start_step, self.started = total, start, time.monotonic()

    def on_train_begin(self) -> None:
        self.started = time.monotonic()
        self.progress.start()
        if self.enabled and not self.console.is_terminal:
            self.console.print(f"treino: passos {self.start_step + 1} a {self.total}; uma linha por relatório")

    def time_left(self, step: int) -> str:
        """At the pace of the steps done since this process started (validations included)."""
        done = step - self.start_step
        if done <= 0:
            return "—"
        return pt_duration((self.total - step) * (time.monotonic() - self.started) / done)

    def on_train_end(self) -> None:
        self.progress.stop()

    def on_step(self, step: int, loss: float) -> None:
        self.progress.update(self.task, advance=1, loss=f"{loss:.3f}")

    def on_validation_begin(self, batches: int) -> None:
        """A transient bar while the validation split is evaluated."""
        self.validation_task = self.progress.add_task("validação", total=batches, loss="—")

    def on_validation_batch(self) -> None:
        self.progress.update(self.validation_task, advance=1)

    def on_validation_end(self) -> None:
        self.progress.remove_task(self.validation_task)

    def on_report(self, entry: dict) -> None:
        if self.enabled:
            self.progress.console.print(
                f"passo {entry['step']:>6} · época {entry['epoch']:.2f} · perda {entry['train_loss']:.4f} · "
                f"lr {entry['learning_rate']:.2e} · {entry['tokens_per_second']:.0f} tokens/s · "
                f"memória máx. {entry['peak_memory_gb']:.2f} GB · faltam {self.time_left(entry['step'])}"
            )

    def on_validation(self, entry: dict) -> None:
        if self.enabled:
            self.progress.console.print(f"passo {entry['step']:>6} · [bold]validação[/] · perda {entry['val_loss']:.4f}")
