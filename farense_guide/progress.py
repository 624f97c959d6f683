"""Progress of a training run on the terminal: one bar with ETA, and a line per report, in pt-PT."""

from __future__ import annotations

from contextlib import contextmanager

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

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    @contextmanager
    def validation(self, batches: int):
        """A transient bar while the validation split is evaluated; yields the per-batch callback."""
        task = self.progress.add_task("validação", total=batches, loss="—")
        try:
            yield lambda: self.progress.update(task, advance=1)
        finally:
            self.progress.remove_task(task)

    def advance(self, loss: float) -> None:
        self.progress.update(self.task, advance=1, loss=f"{loss:.3f}")

    def report(self, entry: dict) -> None:
        if self.enabled:
            self.progress.console.print(
                f"passo {entry['step']:>6} · época {entry['epoch']:.2f} · perda {entry['train_loss']:.4f} · "
                f"lr {entry['learning_rate']:.2e} · {entry['tokens_per_second']:.0f} tokens/s · "
                f"memória máx. {entry['peak_memory_gb']:.2f} GB"
            )

    def report_valid(self, step: int, val_loss: float) -> None:
        if self.enabled:
            self.progress.console.print(f"passo {step:>6} · [bold]validação[/] · perda {val_loss:.4f}")
