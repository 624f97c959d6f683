"""A tiny random llama with SmolLM2's tokenizer: same data path as the real model, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

from farense_guide.runs import safe_write, write_json

TINY_SHAPE = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_traditional": True,
    "tie_word_embeddings": True,
    "max_position_embeddings": 2048,
}
TINY_GROUP_SIZE = 32


def build_tiny_model(folder: Path, tokenizer_source: Path, bits: int | None, seed: int) -> None:
    """Weights and config.json of the tiny model in `folder`; the caller copies the tokenizer files."""
    build_random_model(folder, TINY_SHAPE, tokenizer_source, bits, TINY_GROUP_SIZE, seed)


def build_random_model(folder: Path, shape: dict, tokenizer_source: Path, bits: int | None, group_size: int, seed: int,
                       dtype: str = "float32") -> None:
    """Random weights of a llama of `shape` with the vocabulary of `tokenizer_source` (whose token ids the data will
    have), in `dtype` (which the model then computes in), quantized to `bits` if given: the tiny model of the tests,
    or a 7B shape whose memory is measured."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    source_config = json.loads((tokenizer_source / "config.json").read_text())
    config = dict(
        {key: value for key, value in shape.items() if key not in ("quantization", "vocab_size")},
        vocab_size=source_config["vocab_size"],
        bos_token_id=source_config["bos_token_id"],
        eos_token_id=source_config["eos_token_id"],
    )
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.set_dtype(getattr(mx, dtype))
    if bits:
        nn.quantize(model, group_size=group_size, bits=bits)
        config["quantization"] = {"group_size": group_size, "bits": bits}
    weights = dict(tree_flatten(model.parameters()))
    safe_write(folder / "model.safetensors", lambda tmp: mx.save_safetensors(str(tmp), weights, metadata={"format": "mlx"}))
    write_json(folder / "config.json", config)
