"""Progress of a training run on the terminal: one bar with ETA, and a line per report, in pt-PT.

TrainProgress is a training callback: the loop calls its hooks (steps/train.py's TrainingCallback).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total: int, start: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("passos"),
            TextColumn("perda {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("faltam"), TimeRemainingColumn(),
            console=self.console, disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("treino", total=total, completed=start, loss="—")
        self.validation_task = None

    def on_train_begin(self) -> None:
        self.progress.start()

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
                f"memória máx. {entry['peak_memory_gb']:.2f} GB"
            )

    def on_validation(self, entry: dict) -> None:
        if self.enabled:
            self.progress.console.print(f"passo {entry['step']:>6} · [bold]validação[/] · perda {entry['val_loss']:.4f}")
