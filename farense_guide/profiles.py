"""Training profiles: YAML files in `farense_guide/profiles/`, plain dataclasses in code."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from farense_guide.errors import FarenseError

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "smollm2"


@dataclass
class LoraSettings:
    rank: int = 8
    scale: float = 20.0
    dropout: float = 0.0
    num_layers: int = 16


@dataclass
class Profile:
    name: str
    description: str
    model: str
    quantized: bool = True
    lora: LoraSettings = field(default_factory=LoraSettings)
    batch_size: int = 4
    grad_accumulation: int = 1
    max_seq_length: int = 512
    grad_checkpoint: bool = False
    learning_rate: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    epochs: int = 3
    seed: int = 0
    memory_limit_gb: float | None = None
    model_shape: dict | None = None  # config.json keys, for estimates without the weights

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    """A profile by name (`smollm2`, `tiny`, `m1-16gb`) or from a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FarenseError(
            f"perfil {name_or_path!r} desconhecido.",
            f"perfis disponíveis: {', '.join(available_profiles())}; ou indique um ficheiro .yaml",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise FarenseError(f"{where}: YAML inválido ({getattr(exc, 'problem', exc)}).") from None
    known = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FarenseError(f"{path}: chaves desconhecidas no perfil: {', '.join(unknown)}.")
    raw.setdefault("description", "")
    try:
        lora = LoraSettings(**raw.pop("lora", {}))
        return Profile(name=path.stem, lora=lora, **raw)
    except TypeError as exc:
        raise FarenseError(f"{path}: perfil inválido ({exc}).") from None
