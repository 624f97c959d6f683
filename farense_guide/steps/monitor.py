"""Follow a run from its folder: loss sparklines, tokens/s, memory, epoch and ETA."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from farense_guide.errors import FarenseError
from farense_guide.runs import RunFolder, RunInfo, RunStatus

BLOCKS = "▁▂▃▄▅▆▇█"
VANISHED = "vanished"  # the monitor's own state: run.json says running, but the training process is gone
STATUS_LABELS = {
    RunStatus.RUNNING: "a decorrer", RunStatus.COMPLETED: "terminado", RunStatus.INTERRUPTED: "interrompido",
    VANISHED: "parado sem aviso (o processo de treino já não existe; retome com --resume)",
    RunStatus.FAILED_NAN: "parado: perda não finita", RunStatus.EARLY_STOPPED: "parado cedo",
}


def sparkline(values: list[float], width: int = 48) -> str:
    if not values:
        return "—"
    if len(values) > width:  # keep the shape: average into `width` buckets
        size = len(values) / width
        values = [sum(values[int(i * size):int((i + 1) * size)]) / len(values[int(i * size):int((i + 1) * size)]) for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BLOCKS[min(int((v - low) / span * (len(BLOCKS) - 1) + 0.5), len(BLOCKS) - 1)] for v in values)


def eta_seconds(info: RunInfo, train: list[dict]) -> float | None:
    """Seconds left at the pace since the last start (or resume) of the training process."""
    total = info.iterations.total_steps
    if not train or not total:
        return None
    last = train[-1]
    first_step = info.resumed_at[-1]["step"] if info.resumed_at else 0
    done = last["step"] - first_step
    earlier = [e for e in train if e["step"] <= first_step]
    seconds = last["elapsed_s"] - (earlier[-1]["elapsed_s"] if earlier else 0)
    return (total - last["step"]) * seconds / done if done > 0 and seconds > 0 else None


def clock_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


@dataclass
class Snapshot:
    info: RunInfo
    status: str  # a RunStatus, or VANISHED
    train: list[dict]
    valid: list[dict]
    eta: float | None

    @property
    def running(self) -> bool:
        return self.status == RunStatus.RUNNING


def snapshot(run: RunFolder) -> Snapshot:
    info = run.read_info()
    metrics = run.read_metrics()
    train = [m for m in metrics if m.get("type") == "train"]
    valid = [m for m in metrics if m.get("type") == "valid"]
    status = VANISHED if process_gone(info) else info.status
    eta = eta_seconds(info, train) if status == RunStatus.RUNNING else None
    return Snapshot(info, status, train, valid, eta)


def process_gone(info: RunInfo) -> bool:
    """A run marked running whose training process, on this machine, no longer exists (SIGKILL, power loss)."""
    process = info.process or {}
    if info.status != RunStatus.RUNNING or process.get("host") != platform.node() or not process.get("pid"):
        return False
    try:
        os.kill(process["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    status = Path(f"/proc/{process['pid']}/status")  # Linux: a killed process nobody reaped yet is a zombie
    return status.exists() and "\nState:\tZ" in status.read_text()


def monitor_view(snap: Snapshot) -> Group:
    info, train, valid = snap.info, snap.train, snap.valid
    last = train[-1] if train else {}
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", f"{info.name} · {STATUS_LABELS.get(snap.status, snap.status)}")
    table.add_row("método", f"{info.backend.method} · {info.backend.device}")
    table.add_row("passo", f"{last.get('step', 0)} / {info.iterations.total_steps} · época {last.get('epoch', 0):.2f} de "
                  f"{info.iterations.epochs}")
    table.add_row("perda de treino", f"{sparkline([m['train_loss'] for m in train])}  {last.get('train_loss', float('nan')):.4f}")
    val_text = f"{valid[-1]['val_loss']:.4f}" if valid else "—"
    table.add_row("perda de validação", f"{sparkline([m['val_loss'] for m in valid])}  {val_text}")
    table.add_row("tokens/s", f"{last.get('tokens_per_second', 0):.0f}")
    table.add_row("memória máx.", f"{last.get('peak_memory_gb', 0):.2f} GB")
    table.add_row("tempo restante", clock_time(snap.eta))
    return Group(Text(f"Monitor · {info.profile.name}", style="bold"), table)


def latest_run(runs_dir: Path = Path("runs")) -> RunFolder:
    """The run whose run.json changed last."""
    folders = [RunFolder(path) for path in sorted(runs_dir.iterdir())] if runs_dir.is_dir() else []
    runs = sorted((run for run in folders if run.exists()), key=lambda run: run.run_json.stat().st_mtime)
    if not runs:
        raise FarenseError(f"não há runs em {runs_dir}/.", "comece um com: farense-guide train")
    return runs[-1]


def monitor(path: Path | None, once: bool, interval: float) -> int:
    from rich.console import Console
    from rich.live import Live

    run = RunFolder(path) if path else latest_run()
    console = Console()
    snap = snapshot(run)
    if once or not snap.running:
        console.print(monitor_view(snap))
        return 0
    with Live(monitor_view(snap), console=console, refresh_per_second=4) as live:
        while snap.running:
            time.sleep(interval)
            snap = snapshot(run)
            live.update(monitor_view(snap))
    return 0
