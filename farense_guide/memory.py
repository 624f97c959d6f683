"""Peak-memory estimate for LoRA/QLoRA training, before anything is loaded, and whether a profile fits.

peak = base weights (at their bit width)
     + LoRA parameters, their gradients and Adam's two moments (float32)
     + activations kept for the backward pass of the LoRA layers
     + logits and the cross-entropy around them

The empirical constants (per compute dtype) were fitted to `mx.get_peak_memory()` of
real LoRA steps of SmolLM2-135M here on the CPU: a float16 and a float32 base, batch
2-8 x 128-512 tokens, 4-30 LoRA layers. Checked, without refitting, against a peak
measured elsewhere: a Mistral-7B-shaped model, 4 bits, rank 8 on 16 layers, batch
2 x 512, fp16, on MLX's CUDA backend, peaked at 14.0 GB; this formula gives 13.9 GB.

A profile fits when its estimate is at most 85% of the budget (the GPU's limit, or the RAM
available on the CPU); up to 100% it is tight. Preflight shows the verdict; the trainer
refuses, before loading any weights, a profile that does not fit.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import NamedTuple

from farense_guide import macos
from farense_guide.config import Profile
from farense_guide.errors import FarenseError
from farense_guide.inference import default_quantized
from farense_guide.machine import device_info, read_memory
from farense_guide.models import is_available_offline, resolve_model

GB = 1e9
# Activation arrays alive per trained layer, relative to a naive count of 9 hidden + 2 kv
# + 4 intermediate vectors per token. In float16 the norms and casts to float32 add copies.
ACTIVATION_COPIES = {2: 2.5, 4: 1.0}
# float32-sized copies of the vocabulary-wide logits per token (logits, log-softmax, gradient, casts).
LOGIT_COPIES = {2: 5.0, 4: 4.25}
ADAM_COPIES = 4  # parameter, gradient, first and second moment
# LoRA dropout keeps, per adapted linear, a dropped copy of its input and the mask:
# bytes per input element beyond the copy itself (fitted: 26.4 KB per token and layer on SmolLM2).
DROPOUT_MASK_BYTES = 1.3
FITS_SHARE = 0.85  # at most this share of the budget: fits; up to 100%: tight


@dataclass
class ModelShape:
    hidden_size: int
    num_hidden_layers: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = True
    quantization_bits: int | None = None
    quantization_group_size: int = 64

    @classmethod
    def from_config(cls, config: dict) -> "ModelShape":
        heads = config["num_attention_heads"]
        quantization = config.get("quantization") or {}
        return cls(
            hidden_size=config["hidden_size"],
            num_hidden_layers=config["num_hidden_layers"],
            intermediate_size=config["intermediate_size"],
            num_attention_heads=heads,
            num_key_value_heads=config.get("num_key_value_heads", heads),
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
            vocab_size=config["vocab_size"],
            tie_word_embeddings=config.get("tie_word_embeddings", True),
            quantization_bits=quantization.get("bits"),
            quantization_group_size=quantization.get("group_size", 64),
        )

    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer in one transformer block."""
        h, i = self.hidden_size, self.intermediate_size
        q = self.num_attention_heads * self.head_dim
        kv = self.num_key_value_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    def parameter_count(self) -> int:
        per_layer = sum(a * b for a, b in self.linear_shapes())
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * per_layer + embeddings


@dataclass
class MemoryEstimate:
    weights: float
    lora: float
    activations: float
    logits: float
    lora_parameters: int

    @property
    def total(self) -> float:
        return self.weights + self.lora + self.activations + self.logits

    def rows(self) -> list["EstimateRow"]:
        """The parts and the total, in table order."""
        return [EstimateRow(key, label, getattr(self, key)) for key, label in ESTIMATE_LABELS.items()]


class EstimateRow(NamedTuple):
    key: str  # a MemoryEstimate attribute
    label: str  # pt-PT, for display
    size: float  # bytes


ESTIMATE_LABELS = {
    "weights": "pesos do modelo base",
    "lora": "LoRA: parâmetros, gradientes e Adam",
    "activations": "ativações guardadas para o backward",
    "logits": "logits e entropia cruzada",
    "total": "total estimado",
}


def estimate_memory(
    shape: ModelShape,
    *,
    weight_bits: int | None,
    compute_bytes: int,
    lora_rank: int,
    lora_layers: int,
    batch_size: int,
    seq_length: int,
    grad_checkpoint: bool,
    lora_dropout: float = 0.0,
) -> MemoryEstimate:
    """Bytes at the peak of one training step. `weight_bits=None`: weights at `compute_bytes`."""
    params = shape.parameter_count()
    if weight_bits:
        # MLX affine quantization: a float16 scale and bias per group.
        weights = params * weight_bits / 8 + params / shape.quantization_group_size * 4
    else:
        weights = params * compute_bytes
    layers = shape.num_hidden_layers if lora_layers < 0 else min(lora_layers, shape.num_hidden_layers)
    lora_parameters = layers * sum(lora_rank * (a + b) for a, b in shape.linear_shapes())
    lora = lora_parameters * 4 * ADAM_COPIES

    tokens = batch_size * seq_length
    h, i = shape.hidden_size, shape.intermediate_size
    kv = shape.num_key_value_heads * shape.head_dim
    per_token_layer = ACTIVATION_COPIES[compute_bytes] * compute_bytes * (9 * h + 2 * kv + 4 * i)
    per_token_layer += 4 * shape.num_attention_heads * seq_length  # attention scores, float32
    if lora_dropout > 0:
        inputs = sum(a for a, _ in shape.linear_shapes())  # q, k, v, gate, up see h; o sees q; down sees i
        per_token_layer += inputs * (compute_bytes + DROPOUT_MASK_BYTES)
    if grad_checkpoint:
        # Only each layer's input is kept; one layer at a time is recomputed in full.
        activations = tokens * (layers * h * compute_bytes + per_token_layer)
    else:
        activations = tokens * layers * per_token_layer
    logits = tokens * shape.vocab_size * 4 * LOGIT_COPIES[compute_bytes]
    return MemoryEstimate(weights, lora, activations, logits, lora_parameters)


class Fit(Enum):
    FITS = "fits"
    TIGHT = "tight"
    DOES_NOT_FIT = "does_not_fit"

    @property
    def label(self) -> str:
        """The pt-PT word shown, and written to run.json and preflight.json."""
        return FIT_LABELS[self]


FIT_LABELS = {Fit.FITS: "cabe", Fit.TIGHT: "à justa", Fit.DOES_NOT_FIT: "não cabe"}


def judge_fit(total: float, budget: float) -> Fit:
    if total <= FITS_SHARE * budget:
        return Fit.FITS
    return Fit.TIGHT if total <= budget else Fit.DOES_NOT_FIT


def format_gb(n: float) -> str:
    return f"{n / GB:.1f} GB"


# ── planning: a profile on this machine ─────────────────────────────────────────────────────────


def model_shape(profile: Profile) -> ModelShape | None:
    """The profile's model_shape, else the config.json of a model already here; None when neither is."""
    if profile.model_shape:
        return ModelShape.from_config(profile.model_shape)
    try:
        folder = resolve_model(profile.model) if is_available_offline(profile.model) else None
    except FarenseError:
        return None
    if folder is None:
        return None
    return ModelShape.from_config(json.loads((folder / "config.json").read_text()))


def training_shape(profile: Profile) -> ModelShape:
    """The shape the trainer checks: the base model's config.json (fetched if need be), or the
    profile's model_shape when the weights are not here yet, so a 7B that cannot fit is refused before its download."""
    if profile.model_shape and not is_available_offline(profile.model):
        return ModelShape.from_config(profile.model_shape)
    return ModelShape.from_config(json.loads((resolve_model(profile.model) / "config.json").read_text()))


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


def estimate_for(profile: Profile, shape: ModelShape, quantized: bool) -> tuple[MemoryEstimate, str]:
    """The estimate for a profile, and its precision's label."""
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


@dataclass
class MemoryCheck:
    """A profile's estimate against a budget: the verdict (None when the budget is unknown), in words, with what to change."""

    estimate: MemoryEstimate
    fit: Fit | None
    summary: str  # pt-PT: "X GB estimados (precisão, batch B x L) para Y GB utilizáveis: cabe"
    hint: str = ""
    details: dict = field(default_factory=dict)  # for run.json's memory.estimate and preflight.json


def check_profile_memory(profile: Profile, shape: ModelShape, quantized: bool, budget: int | None) -> MemoryCheck:
    estimate, precision = estimate_for(profile, shape, quantized)
    # run.json and preflight.json have always keyed the parts by their pt-PT labels: kept, so old runs read the same
    details = {"precision": precision, "bytes": {row.label: row.size for row in estimate.rows()}, "budget": budget}
    summary = f"{format_gb(estimate.total)} estimados ({precision}, batch {profile.batch_size} x {profile.max_seq_length})"
    if budget is None:
        return MemoryCheck(estimate, None, summary, "memória disponível desconhecida", details)
    fit = judge_fit(estimate.total, budget)
    details["verdict"] = fit.label
    summary += f" para {format_gb(budget)} utilizáveis: {fit.label}"
    hint = "" if fit is Fit.FITS else what_to_change(profile, shape, quantized, budget)
    return MemoryCheck(estimate, fit, summary, hint, details)


def what_to_change(profile: Profile, shape: ModelShape, quantized: bool, budget: int) -> str:
    """The cheaper settings in turn, with their estimates, up to the first that fits; pt-PT."""
    options, fits = [], False
    for change, cheaper in cheaper_settings(profile):
        total = estimate_for(cheaper, shape, quantized)[0].total
        options.append(f"{change} → {format_gb(total)}")
        if fits := judge_fit(total, budget) is Fit.FITS:
            break
    hint = "mude no perfil: " + "; ".join(options) if options else ""
    if not fits:
        hint += ("; " if hint else "") + "nem assim cabe: use um modelo mais pequeno ou uma GPU (Metal/CUDA) com a base a 4 bits"
    if profile.quantized and not quantized:
        hint += ("; " if hint else "") + ("este perfil é QLoRA, pensado para uma GPU (Metal/CUDA): sem GPU a base é desquantizada "
                                          "para float32 e ocupa muito mais")
    return hint


def require_fit(profile: Profile, shape: ModelShape, device: str, quantized: bool | None) -> dict:
    """Before loading weights: refuse a profile that does not fit, warn when it is tight; the details for run.json.

    `quantized=None`: the default for the device, as inference.load_base decides.
    """
    system = platform.system()
    _, available = read_memory(system, macos.read_macos() if system == "Darwin" else None)
    budget = memory_budget(device, device_info(), available)
    keep_quantized = bool(shape.quantization_bits) and (quantized if quantized is not None else default_quantized(profile, device))
    check = check_profile_memory(profile, shape, keep_quantized, budget)
    if check.fit is Fit.DOES_NOT_FIT:
        raise FarenseError(f"o perfil não cabe na memória: {check.summary}.", check.hint)
    if check.fit is None:
        print(f"aviso: {check.hint}: {check.summary}; sem verificar se cabe.", file=sys.stderr)
    elif check.fit is Fit.TIGHT:
        print(f"aviso: memória à justa: {check.summary}." + (f"\n  sugestão: {check.hint}" if check.hint else ""), file=sys.stderr)
    return check.details
