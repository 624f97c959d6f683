"""The training profile: YAML files in `farense_guide/profiles/`, a plain dataclass in code.

Each field carries its pt-PT help text in its metadata (`describe_keys` lists them for the CLI).
YAML is read with a float-aware loader: PyYAML follows YAML 1.1, where `1e-4` is a string.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from farense_guide.errors import FarenseError

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "smollm2"
PROFILE_ENV = "FARENSE_PROFILE"  # the profile commands use when none is given (the snippets run with `tiny`)


# Command-line shortcuts for the keys people change most (`--lora-rank 16`); anything else: --set key=value.
SHORTCUTS = {
    "epochs": ("epochs", int),
    "batch_size": ("batch_size", int),
    "grad_accumulation": ("grad_accumulation", int),
    "learning_rate": ("learning_rate", float),
    "max_seq_length": ("max_seq_length", int),
    "max_steps": ("max_steps", int),
    "lora_rank": ("lora.rank", int),
    "lora_layers": ("lora.num_layers", int),
    "seed": ("seed", int),
    "data": ("data", str),
}


def default_profile_name() -> str:
    return os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


class ProfileLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float, as YAML 1.2 does (mlx-lm's loader does the same, globally)."""


ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def read_yaml(text: str):
    return yaml.load(text, Loader=ProfileLoader)


def setting(default, help: str, **kwargs):
    """A profile field with its help text."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class LoraSettings:
    rank: int = setting(8, "posto (rank) das matrizes A e B do LoRA")
    scale: float = setting(20.0, "escala do produto B·A somado ao peso congelado")
    dropout: float = setting(0.0, "dropout à entrada de cada camada LoRA")
    num_layers: int = setting(16, "número de camadas, a contar do fim, que recebem LoRA (-1: todas)")


@dataclass
class Profile:
    name: str = setting("", "nome do perfil (o do ficheiro .yaml)")
    description: str = setting("", "descrição numa linha")
    model: str = setting("smollm2", "modelo base: smollm2, tiny, uma pasta ou um id do Hugging Face")
    quantized: bool = setting(True, "base a 4 bits (QLoRA) numa GPU; no CPU a base é desquantizada para float32")
    lora: LoraSettings = setting(LoraSettings, "definições do LoRA (lora.rank, lora.scale, lora.dropout, lora.num_layers)")
    batch_size: int = setting(4, "exemplos por passo")
    grad_accumulation: int = setting(1, "passos cujos gradientes se somam antes de cada atualização")
    max_seq_length: int = setting(512, "tokens por exemplo, no máximo")
    grad_checkpoint: bool = setting(False, "gradient checkpointing: menos memória, ~30% mais lento")
    learning_rate: float = setting(1e-4, "taxa de aprendizagem máxima")
    lr_schedule: str = setting("cosine", "cosine (com aquecimento) ou constant")
    warmup_steps: int = setting(0, "passos de aquecimento da taxa de aprendizagem")
    epochs: int = setting(3, "passagens pelos dados de treino")
    seed: int = setting(0, "semente: ordem dos dados, dropout e inicialização do LoRA")
    memory_limit_gb: float | None = setting(None, "limite de memória do MLX em GB (null: sem limite)")
    model_shape: dict | None = setting(None, "chaves do config.json do modelo, para estimar a memória sem os pesos")
    data: str = setting("data", "pasta com train.jsonl, valid.jsonl e test.jsonl")
    mask_prompt: bool = setting(True, "perda só nas respostas, não nas perguntas")
    loss_every_turn: bool = setting(False, "perda em todas as respostas de uma conversa (uma cópia por resposta); "
                                           "falso: só na última, como o ChatDataset do mlx-lm")
    max_steps: int | None = setting(None, "encurta o treino a N passos (o run.json di-lo)")
    steps_per_report: int = setting(10, "passos entre relatórios de perda e velocidade")
    steps_per_eval: int = setting(50, "passos entre validações")
    save_every: int = setting(50, "passos entre checkpoints")
    keep_checkpoints: int = setting(3, "checkpoints guardados (os mais recentes)")
    early_stopping_patience: int = setting(5, "validações sem melhorar antes de parar (0: nunca)")
    val_batches: int = setting(-1, "batches de validação por validação (-1: o conjunto todo)")
    eval_limit: int | None = setting(None, "avalia só as primeiras N perguntas de teste e validação")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def describe_keys() -> list[tuple[str, str]]:
    """(key, help) of every profile key a user may change, `lora.rank` style."""
    keys = []
    for item in dataclasses.fields(Profile):
        if item.name == "lora":
            keys += [(f"lora.{sub.name}", sub.metadata["help"]) for sub in dataclasses.fields(LoraSettings)]
        elif item.name != "name":
            keys.append((item.name, item.metadata["help"]))
    return keys


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
        raw = read_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise FarenseError(f"{where}: YAML inválido ({getattr(exc, 'problem', exc)}).") from None
    except UnicodeDecodeError as exc:
        raise FarenseError(f"{path}: não é texto UTF-8 (byte inválido na posição {exc.start}).") from None
    if not isinstance(raw, dict):
        raise FarenseError(f"{path}: um perfil é um dicionário YAML (chave: valor).")
    raw.setdefault("description", "")
    return profile_from_dict({"name": path.stem, **raw}, where=str(path))


def parse_override(text: str) -> tuple[list[str], object]:
    """'lora.rank=16' -> (['lora', 'rank'], 16), the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise FarenseError(f"alteração inválida {text!r}: use chave=valor, p. ex. lora.rank=16")
    try:
        return key.strip().split("."), read_yaml(value)
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
        if path == ["lora"] and isinstance(value, dict):  # --set lora={rank: 4} changes those keys, not the whole section
            value = {**target["lora"], **value}
        target[path[-1]] = value
    return profile_from_dict(data, f"perfil {profile.name}")


POSITIVE = ("batch_size", "grad_accumulation", "epochs", "max_seq_length", "steps_per_report", "steps_per_eval", "save_every",
            "keep_checkpoints")
INTEGERS = ("seed", "warmup_steps", "val_batches", "early_stopping_patience")
OPTIONAL_INTEGERS = ("max_steps", "eval_limit")
BOOLEANS = ("quantized", "grad_checkpoint", "mask_prompt", "loss_every_turn")
TEXTS = ("name", "model", "data", "lr_schedule", "description")
LR_SCHEDULES = ("cosine", "constant")
FLOATS = ("learning_rate", "memory_limit_gb")
OPTIONAL_FLOATS = ("memory_limit_gb",)
LORA_FLOATS = ("scale", "dropout")


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_types(profile: Profile, where: str) -> None:
    """Each key holds its kind of value (YAML or --set may give text, a list or a section anywhere), naming the key."""
    values = {key: getattr(profile, key) for key in POSITIVE + INTEGERS + BOOLEANS + TEXTS}
    values.update({f"lora.{key}": getattr(profile.lora, key) for key in ("rank", "num_layers")})
    for key, value in values.items():
        kind, label = ((bool, "verdadeiro ou falso (true/false)") if key in BOOLEANS else (str, "um texto") if key in TEXTS
                       else (int, "um número inteiro"))
        if not isinstance(value, kind) or (kind is int and not is_integer(value)):
            raise FarenseError(f"{where}: {key} tem de ser {label} (recebido {value!r}).")
    for key in OPTIONAL_INTEGERS:
        value = getattr(profile, key)
        if value is not None and not is_integer(value):
            raise FarenseError(f"{where}: {key} tem de ser um número inteiro ou null (recebido {value!r}).")
    if profile.model_shape is not None and not isinstance(profile.model_shape, dict):
        raise FarenseError(f"{where}: model_shape tem de ter chaves do config.json do modelo, ou ser null "
                           f"(recebido {profile.model_shape!r}).")


def check_values(profile: Profile, where: str | None = None) -> Profile:
    """Refuse values that would crash or silently do nothing later, naming the key."""
    where = where or f"perfil {profile.name}"
    check_types(profile, where)
    for key in POSITIVE:
        if getattr(profile, key) < 1:
            raise FarenseError(f"{where}: {key} tem de ser um inteiro maior ou igual a 1 (recebido {getattr(profile, key)!r}).")
    for key, value, least in (("lora.rank", profile.lora.rank, 1), ("max_steps", profile.max_steps, 1),
                              ("eval_limit", profile.eval_limit, 2)):
        if value is not None and value < least:
            raise FarenseError(f"{where}: {key} tem de ser pelo menos {least} (recebido {value!r}).")
    if profile.lora.num_layers < 1 and profile.lora.num_layers != -1:
        raise FarenseError(f"{where}: lora.num_layers tem de ser pelo menos 1, ou -1 para todas (recebido {profile.lora.num_layers}).")
    if not 0 <= profile.lora.dropout < 1:
        raise FarenseError(f"{where}: lora.dropout tem de estar entre 0 e 1, sem o 1 (recebido {profile.lora.dropout!r}).")
    if not math.isfinite(profile.lora.scale):
        raise FarenseError(f"{where}: lora.scale tem de ser um número finito (recebido {profile.lora.scale!r}).")
    if not (math.isfinite(profile.learning_rate) and profile.learning_rate >= 0):
        raise FarenseError(f"{where}: learning_rate tem de ser um número finito maior ou igual a 0 (recebido {profile.learning_rate!r}).")
    if profile.memory_limit_gb is not None and not (math.isfinite(profile.memory_limit_gb) and profile.memory_limit_gb > 0):
        raise FarenseError(f"{where}: memory_limit_gb tem de ser um número de GB maior do que 0, ou null (recebido "
                           f"{profile.memory_limit_gb!r}).")
    if profile.lr_schedule not in LR_SCHEDULES:
        raise FarenseError(f"{where}: lr_schedule tem de ser {' ou '.join(LR_SCHEDULES)} (recebido {profile.lr_schedule!r}).")
    if profile.loss_every_turn and not profile.mask_prompt:
        raise FarenseError(f"{where}: loss_every_turn precisa de mask_prompt: sem ele a perda já conta todas as respostas, e as "
                           "cópias da conversa só repetiriam o início dela.")
    return profile


def as_float(key: str, value, where: str):
    """Numbers for float keys: 1 -> 1.0; text or booleans are refused, naming the key (null only where it means something)."""
    if isinstance(value, float) or (value is None and key in OPTIONAL_FLOATS):
        return value
    if is_integer(value):
        return float(value)
    raise FarenseError(f"{where}: {key} tem de ser um número (recebido {value!r}).")


def known_keys(kind, data: dict, where: str) -> dict:
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(kind)}, key=str)
    if unknown:
        keys = ", ".join(sorted(f.name for f in dataclasses.fields(kind) if f.name != "name"))
        raise FarenseError(f"{where}: chaves desconhecidas: {', '.join(map(str, unknown))}.", f"chaves: {keys}")
    return data


def profile_from_dict(data: dict, where: str = "perfil") -> Profile:
    """A checked Profile from a dict (a YAML file, a run.json); `where` names the source in messages."""
    data = dict(known_keys(Profile, data, where))
    lora = data.pop("lora", {})
    if not isinstance(lora, dict):
        raise FarenseError(f"{where}: lora tem de ter chaves (lora.rank, lora.scale, lora.dropout, lora.num_layers), não {lora!r}.")
    lora = dict(known_keys(LoraSettings, lora, f"{where}, em lora"))
    data.update({key: as_float(key, data[key], where) for key in FLOATS if key in data})
    lora.update({key: as_float(f"lora.{key}", lora[key], where) for key in LORA_FLOATS if key in lora})
    return check_values(Profile(lora=LoraSettings(**lora), **data), None if where == "perfil" else where)
