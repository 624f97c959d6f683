"""Peak-memory estimate for LoRA/QLoRA training, before anything is loaded.

peak = base weights (at their bit width)
     + LoRA parameters, their gradients and Adam's two moments (float32)
     + activations kept for the backward pass of the LoRA layers
     + logits and the cross-entropy around them

The empirical constants (per compute dtype) were fitted to `mx.get_peak_memory()` of
real LoRA steps of SmolLM2-135M here on the CPU: a float16 and a float32 base, batch
2-8 x 128-512 tokens, 4-30 LoRA layers. Checked, without refitting, against a peak
measured elsewhere: a Mistral-7B-shaped model, 4 bits, rank 8 on 16 layers, batch
2 x 512, fp16, on MLX's CUDA backend, peaked at 14.0 GB; this formula gives 13.9 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

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
FITS_SHARE = 0.85  # at most this share of the budget: "cabe"; up to 100%: "à justa"


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

    def rows(self) -> list[tuple[str, float]]:
        """(pt-PT label, bytes) for tables."""
        return [
            ("pesos do modelo base", self.weights),
            ("LoRA: parâmetros, gradientes e Adam", self.lora),
            ("ativações guardadas para o backward", self.activations),
            ("logits e entropia cruzada", self.logits),
            ("total estimado", self.total),
        ]


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


def verdict(total: float, budget: float) -> str:
    """'cabe', 'à justa' or 'não cabe'."""
    if total <= FITS_SHARE * budget:
        return "cabe"
    return "à justa" if total <= budget else "não cabe"
