"""Choosing the base model (chapter 6): models that a 16 GB Mac could train, each estimated by the memory estimator.

Every row takes the m1-16gb profile's training settings (LoRA rank and layers, batch x sequence length, gradient
checkpointing, dropout) and a model's shape, and asks `farense_guide.memory` for the peak of one training step twice:
QLoRA (the base at 4 bits) and LoRA over a 16-bit base. Shapes, not runs: the architecture keys below are copied from
each model's config.json on the Hugging Face Hub; nothing here downloads or loads a model. The estimator's constants
were fitted on SmolLM2 (a Llama architecture) and checked on a Mistral-7B shape; for architectures that differ more
(Gemma 2's soft-capped logits and extra norms, Phi-3.5's fused projections) the estimate is a first guess.

Writes base_models.md (the table) and base_models.* values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farense_guide.book.fragments import M1_16GB_WORKING_SET, code
from farense_guide.pt_format import pt

PROFILE = "m1-16gb"  # the settings every row is estimated with


@dataclass(frozen=True)
class BaseModel:
    key: str  # value names: base_models.<key>.*
    name: str  # as the table shows it
    repository: str  # the Hub repository whose config.json the shape copies
    shape: dict | None  # config.json's keys for memory.ModelShape; None: the m1-16gb profile's own model_shape
    portuguese: str  # what the model card says of Portuguese, pt-PT


# Shapes copied from the config.json of each repository: hidden_size, num_hidden_layers, intermediate_size,
# num_attention_heads, num_key_value_heads, vocab_size, and head_dim and tie_word_embeddings where the file has them
# (where it has not, ModelShape.from_config derives head_dim as hidden_size / heads and ties the embeddings).
# The «portuguese» column repeats the model card: Llama 3.2 lists Portuguese among its eight officially supported
# languages; Qwen2.5 among its 29+ languages; Phi-3.5-mini among its supported languages; Gemma 2 is «available in
# English»; SmolLM2 «primarily understand[s] and generate[s] content in English»; Mistral-7B-Instruct-v0.3's card
# names no language. No card tells European from Brazilian Portuguese.
MODELS = [
    BaseModel("smollm2_135m", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
              dict(hidden_size=576, num_hidden_layers=30, intermediate_size=1536, num_attention_heads=9,
                   num_key_value_heads=3, head_dim=64, vocab_size=49152, tie_word_embeddings=True),
              "não: sobretudo inglês"),
    BaseModel("llama32_1b", "Llama 3.2 1B Instruct", "meta-llama/Llama-3.2-1B-Instruct",
              dict(hidden_size=2048, num_hidden_layers=16, intermediate_size=8192, num_attention_heads=32,
                   num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True),
              "sim, entre as línguas oficiais"),
    BaseModel("qwen25_1_5b", "Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct",
              dict(hidden_size=1536, num_hidden_layers=28, intermediate_size=8960, num_attention_heads=12,
                   num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
              "sim, entre as línguas que declara"),
    BaseModel("smollm2_1_7b", "SmolLM2-1.7B-Instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct",
              dict(hidden_size=2048, num_hidden_layers=24, intermediate_size=8192, num_attention_heads=32,
                   num_key_value_heads=32, head_dim=64, vocab_size=49152, tie_word_embeddings=True),
              "não: sobretudo inglês"),
    BaseModel("gemma2_2b", "Gemma 2 2B (it)", "google/gemma-2-2b-it",
              dict(hidden_size=2304, num_hidden_layers=26, intermediate_size=9216, num_attention_heads=8,
                   num_key_value_heads=4, head_dim=256, vocab_size=256000),  # no tie key: Gemma ties them
              "não: inglês"),
    BaseModel("llama32_3b", "Llama 3.2 3B Instruct", "meta-llama/Llama-3.2-3B-Instruct",
              dict(hidden_size=3072, num_hidden_layers=28, intermediate_size=8192, num_attention_heads=24,
                   num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=True),
              "sim, entre as línguas oficiais"),
    BaseModel("qwen25_3b", "Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-3B-Instruct",
              dict(hidden_size=2048, num_hidden_layers=36, intermediate_size=11008, num_attention_heads=16,
                   num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
              "sim, entre as línguas que declara"),
    # Phi-3 fuses q, k, v into one projection and gate, up into another: the same weights, slightly fewer LoRA
    # parameters than the separate projections the estimator counts.
    BaseModel("phi35_mini", "Phi-3.5-mini-instruct", "microsoft/Phi-3.5-mini-instruct",
              dict(hidden_size=3072, num_hidden_layers=32, intermediate_size=8192, num_attention_heads=32,
                   num_key_value_heads=32, vocab_size=32064, tie_word_embeddings=False),
              "sim, entre as línguas que declara"),
    BaseModel("qwen25_7b", "Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
              dict(hidden_size=3584, num_hidden_layers=28, intermediate_size=18944, num_attention_heads=28,
                   num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
              "sim, entre as línguas que declara"),
    BaseModel("mistral7b_v03", "Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-Instruct-v0.3", None,
              "não declara línguas"),
]


def estimates(model: BaseModel):
    """(shape, QLoRA estimate, 16-bit-base estimate) with the m1-16gb profile's settings."""
    from farense_guide.config import load_profile
    from farense_guide.memory import ModelShape, estimate_for, estimate_memory

    profile = load_profile(PROFILE)
    shape = ModelShape.from_config(model.shape or profile.model_shape)
    qlora, _ = estimate_for(profile, shape, quantized=True)
    half = estimate_memory(shape, weight_bits=None, compute_bytes=2, lora_rank=profile.lora.rank, lora_layers=profile.lora.num_layers,
                           batch_size=profile.batch_size, seq_length=profile.max_seq_length, grad_checkpoint=profile.grad_checkpoint,
                           lora_dropout=profile.lora.dropout)
    return shape, qlora, half


def pt_list(names: list[str]) -> str:
    """«a, b e c»; «nenhum» for none."""
    return " e ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names) or "nenhum"


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    from farense_guide.config import load_profile
    from farense_guide.memory import FITS_SHARE, GB, Fit, judge_fit

    profile = load_profile(PROFILE)
    rows = sorted(((model, *estimates(model)) for model in MODELS), key=lambda row: row[1].parameter_count())
    lines = ["| modelo | camadas | vocabulário | parâmetros (mil milhões) | QLoRA: pesos | QLoRA: total | num M1 de 16 GB "
             "| base em 16 bits: total | num M1 de 16 GB | português no cartão do modelo |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |"]
    values: dict[str, str] = {}
    fits_qlora, fits_half = [], []
    for model, shape, qlora, half in rows:
        qlora_fit, half_fit = judge_fit(qlora.total, M1_16GB_WORKING_SET), judge_fit(half.total, M1_16GB_WORKING_SET)
        cells = {"layers": str(shape.num_hidden_layers), "vocab": pt(shape.vocab_size, 0), "parameters_b": pt(shape.parameter_count() / 1e9, 2),
                 "qlora_weights_gb": pt(qlora.weights / GB, 2), "qlora_gb": pt(qlora.total / GB, 2), "qlora_verdict": qlora_fit.label,
                 "float16_gb": pt(half.total / GB, 2), "float16_verdict": half_fit.label}
        label = model.name if model.shape else f"{model.name} (perfil {code(PROFILE)})"
        lines.append(f"| {label} | {cells['layers']} | {cells['vocab']} | {cells['parameters_b']} | {cells['qlora_weights_gb']} "
                     f"| {cells['qlora_gb']} | {cells['qlora_verdict']} | {cells['float16_gb']} | {cells['float16_verdict']} "
                     f"| {model.portuguese} |")
        values.update({f"base_models.{model.key}.{name}": cell for name, cell in cells.items()})
        if qlora_fit is Fit.FITS:
            fits_qlora.append(model.name)
        if half_fit is Fit.FITS:
            fits_half.append(model.name)
    values.update({"base_models.count": str(len(MODELS)), "base_models.fits_qlora_count": str(len(fits_qlora)),
                   "base_models.fits_qlora": f"todos os {len(MODELS)}" if len(fits_qlora) == len(MODELS) else f"{len(fits_qlora)} dos {len(MODELS)}",
                   "base_models.fits_float16": pt_list(fits_half),
                   "base_models.fits_float16_count": str(len(fits_half))})
    note = (f"\nEstimativas do estimador de memória (`farense_guide/memory.py`), em GB (10⁹ bytes), no pico de um passo de treino, "
            f"todas com as definições do perfil {code(PROFILE)}: LoRA de rank {profile.lora.rank} nas últimas {profile.lora.num_layers} "
            f"camadas (todas, num modelo com menos), batch {profile.batch_size} × {profile.max_seq_length} tokens, "
            f"gradient checkpointing {'ligado' if profile.grad_checkpoint else 'desligado'}, dropout {pt(profile.lora.dropout, 2)}. "
            "As formas (camadas, dimensões, cabeças, vocabulário) são as do `config.json` de cada modelo no Hugging Face; "
            "os parâmetros são os que o estimador conta (camadas lineares e embeddings). Nenhuma linha é um run: "
            f"nenhum destes modelos foi treinado com estas definições neste projeto. O orçamento do M1 de 16 GB é o "
            f"`recommendedMaxWorkingSetSize` do Metal ({pt(M1_16GB_WORKING_SET / GB, 1)} GB), a memória que o Metal recomenda "
            f"à GPU; «cabe» é até {FITS_SHARE:.0%} dele.\n")
    return {"base_models.md": "\n".join(lines) + "\n" + note}, values


def sources(run_path: Path) -> list[Path]:
    from farense_guide.config import PROFILE_DIR

    return [PROFILE_DIR / f"{PROFILE}.yaml"]
