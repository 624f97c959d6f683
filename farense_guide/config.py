"""Training profiles: YAML files in `farense_guide/profiles/`, plain dataclasses in code."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from farense_guide.errors import FarenseError

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "smollm2"
PROFILE_ENV = "FARENSE_PROFILE"  # the profile commands use when none is given (the snippets run with `tiny`)


def default_profile_name() -> str:
    return os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


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
    data: str = "data"
    mask_prompt: bool = True  # loss on the answers only
    max_steps: int | None = None  # cut the run short (labelled as such in run.json)
    steps_per_report: int = 10
    steps_per_eval: int = 50
    save_every: int = 50
    keep_checkpoints: int = 3
    early_stopping_patience: int = 5  # validations without improvement; 0 = off
    val_batches: int = -1  # -1 = the whole validation split
    eval_limit: int | None = None  # evaluate only the first N test/valid questions (tiny runs)

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
    return profile_from_dict({"name": path.stem, **raw})


def parse_override(text: str) -> tuple[list[str], object]:
    """'lora.rank=16' -> (['lora', 'rank'], 16), the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise FarenseError(f"alteração inválida {text!r}: use chave=valor, p. ex. lora.rank=16")
    try:
        return key.strip().split("."), yaml.safe_load(value)
    except yaml.YAMLError:
        raise FarenseError(f"valor inválido em {text!r}") from None


def apply_overrides(profile: Profile, overrides: list[str]) -> Profile:
    """A copy of `profile` with `key=value` changes (`lora.rank=16`, `epochs=1`)."""
    data = profile.to_dict()
    for text in overrides:
        path, value = parse_override(text)
        target = data
        for part in path[:-1]:
            if not isinstance(target.get(part), dict):
                raise FarenseError(f"chave desconhecida no perfil: {'.'.join(path)}")
            target = target[part]
        if path[-1] not in target:
            raise FarenseError(f"chave desconhecida no perfil: {'.'.join(path)}", f"chaves: {', '.join(sorted(target))}")
        current = target[path[-1]]
        if isinstance(current, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
            try:
                value = float(value)  # YAML 1.1 reads 1e-4 as text
            except ValueError:
                raise FarenseError(f"{'.'.join(path)}: número inválido {value!r}") from None
        target[path[-1]] = value
    return profile_from_dict(data)


POSITIVE = ("batch_size", "grad_accumulation", "epochs", "max_seq_length", "steps_per_report", "steps_per_eval", "save_every",
            "keep_checkpoints")


def check_values(profile: Profile) -> Profile:
    """Refuse values that would crash or silently do nothing later, naming the key."""
    for key in POSITIVE:
        value = getattr(profile, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FarenseError(f"perfil {profile.name}: {key} tem de ser um inteiro maior ou igual a 1 (recebido {value!r}).")
    for key, value in (("lora.rank", profile.lora.rank), ("max_steps", profile.max_steps), ("eval_limit", profile.eval_limit)):
        if value is not None and (not isinstance(value, int) or value < (2 if key == "eval_limit" else 1)):
            raise FarenseError(f"perfil {profile.name}: {key} inválido ({value!r}).")
    if not profile.learning_rate >= 0:
        raise FarenseError(f"perfil {profile.name}: learning_rate não pode ser negativo (recebido {profile.learning_rate!r}).")
    return profile


def profile_from_dict(data: dict) -> Profile:
    data = dict(data)
    try:
        lora = LoraSettings(**data.pop("lora", {}))
        return check_values(Profile(lora=lora, **data))
    except TypeError as exc:
        raise FarenseError(f"perfil inválido ({exc}).") from None
