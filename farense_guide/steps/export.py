"""`farense-guide export runs/<name> --gguf`: the fused model as a GGUF file, and an Ollama Modelfile.

mlx-lm's own export writes every tokenizer as `llama` (SentencePiece) and permutes q/k for the
Hugging Face layout, so it does not fit the SmolLM2 model this project imports from GGUF (a
byte-level BPE tokenizer, q/k already in llama.cpp's layout). This writer uses llama.cpp's own
`gguf` package: float16 tensors (float32 norms) with llama.cpp's names, q/k permuted only where the
model is in the Hugging Face layout, the BPE vocabulary and merges from tokenizer.json, and the
model's chat template.
"""

from __future__ import annotations

import json
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.gguf_import import LAYER_NAMES, TOP_NAMES
from farense_guide.runs import RunFolder, file_sha256, read_json, safe_write, write_json

GGUF_NAMES = {mlx: gguf for gguf, mlx in {**LAYER_NAMES, **TOP_NAMES}.items()}
SYSTEM_MARK, USER_MARK, ANSWER_MARK = "«SISTEMA»", "«PERGUNTA»", "«RESPOSTA»"


def gguf_tensor_name(name: str) -> str:
    """mlx-lm llama parameter name -> llama.cpp tensor name."""
    stem, kind = name.rsplit(".", 1)
    if stem.startswith("model.layers."):
        layer, part = stem.removeprefix("model.layers.").split(".", 1)
        if part in GGUF_NAMES:
            return f"blk.{layer}.{GGUF_NAMES[part]}.{kind}"
    elif stem in GGUF_NAMES:
        return f"{GGUF_NAMES[stem]}.{kind}"
    raise FarenseError(f"parâmetro sem nome GGUF: {name!r} (só a arquitetura llama é suportada)")


def to_llama_cpp_rope(weight, heads: int):
    """Hugging Face's half-split rotary layout -> llama.cpp's interleaved one (as llama.cpp's converter does)."""
    shape = weight.shape
    return weight.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def gguf_tensors(weights: dict, config: dict) -> dict:
    """numpy arrays by GGUF name: float16, with float32 norms; q/k in llama.cpp's layout."""
    import mlx.core as mx
    import numpy as np

    tensors = {}
    for name, value in weights.items():
        if not config.get("rope_traditional", False):
            if name.endswith("self_attn.q_proj.weight"):
                value = to_llama_cpp_rope(value, config["num_attention_heads"])
            elif name.endswith("self_attn.k_proj.weight"):
                value = to_llama_cpp_rope(value, config.get("num_key_value_heads", config["num_attention_heads"]))
        dtype = mx.float32 if value.ndim == 1 else mx.float16
        tensors[gguf_tensor_name(name)] = np.array(value.astype(dtype))
    return dict(sorted(tensors.items(), key=lambda item: tensor_order(item[0])))


def tensor_order(name: str) -> tuple[int, str]:
    """llama.cpp's usual order: token_embd, blk.0 … blk.N, then output_norm and output."""
    if name.startswith("blk."):
        return int(name.split(".")[1]) + 1, name
    return (0 if name.startswith("token_embd") else 10**6), name


def vocabulary(model_folder: Path) -> tuple[list[str], list[int]]:
    """Token strings by id and llama.cpp token types, from a byte-level BPE tokenizer.json."""
    import gguf

    tokenizer = read_json(model_folder / "tokenizer.json")
    model = tokenizer.get("model", {})
    byte_level = "ByteLevel" in json.dumps(tokenizer.get("pre_tokenizer")) or "ByteLevel" in json.dumps(tokenizer.get("decoder"))
    if model.get("type") != "BPE" or not byte_level:
        raise FarenseError(
            f"{model_folder / 'tokenizer.json'}: só tokenizadores BPE ao nível do byte (como o do SmolLM2) são exportados para GGUF.",
            f"para este modelo use o conversor do llama.cpp sobre a pasta do modelo fundido: python convert_hf_to_gguf.py {model_folder}",
        )
    added = {token["id"]: token for token in tokenizer.get("added_tokens", [])}
    size = max([*model["vocab"].values(), *added]) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, index in model["vocab"].items():
        tokens[index], types[index] = text, gguf.TokenType.NORMAL
    for index, token in added.items():
        tokens[index] = token["content"]
        types[index] = gguf.TokenType.CONTROL if token.get("special") else gguf.TokenType.USER_DEFINED
    return tokens, [int(t) for t in types]


def tokenizer_pre(tokens: list[str]) -> str:
    """llama.cpp's pre-tokenizer name: the embedded SmolLM2 GGUF's when the vocabulary is the same, else 'default'."""
    import gguf

    from farense_guide.models import embedded_gguf

    try:
        reader = gguf.GGUFReader(str(embedded_gguf()[0]))
    except (FarenseError, OSError):
        return "default"
    field = reader.get_field("tokenizer.ggml.tokens")
    if field is None or len(field.data) != len(tokens) or field.contents(0) != tokens[0] or field.contents(-1) != tokens[-1]:
        return "default"
    pre = reader.get_field("tokenizer.ggml.pre")
    return pre.contents() if pre is not None else "default"


def model_config(model_folder: Path) -> dict:
    """The fused model's config.json, refused unless it is a float llama (or mistral)."""
    config = read_json(model_folder / "config.json")
    if config.get("model_type") not in ("llama", "mistral"):
        raise FarenseError(f"{model_folder}: arquitetura {config.get('model_type')!r}; a exportação GGUF só conhece llama e mistral.")
    if config.get("quantization"):
        raise FarenseError(f"{model_folder}: modelo quantizado; exporte um modelo fundido em float (farense-guide fuse sem --bits).")
    return config


def add_llama_metadata(writer, config: dict, name: str, vocabulary_size: int) -> None:
    """The model's shape as llama.cpp reads it."""
    import gguf

    heads = config["num_attention_heads"]
    writer.add_name(name)
    writer.add_context_length(config.get("max_position_embeddings", 2048))
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads", heads))
    writer.add_rope_dimension_count(config.get("head_dim") or config["hidden_size"] // heads)
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-5))
    writer.add_rope_freq_base(config.get("rope_theta", 10000.0))
    writer.add_vocab_size(vocabulary_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)


def write_gguf(model_folder: Path, path: Path, name: str) -> dict:
    """Write the GGUF file; returns what went in (for export.json)."""
    import gguf
    import mlx.core as mx

    config = model_config(model_folder)
    weights = {}
    for file in sorted(model_folder.glob("model*.safetensors")):
        weights.update(mx.load(str(file)))
    tensors = gguf_tensors(weights, config)
    tokens, types = vocabulary(model_folder)

    writer = gguf.GGUFWriter(str(path), "llama")
    add_llama_metadata(writer, config, name, len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer_pre(tokens))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(model_folder, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)
    for tensor_name, array in tensors.items():
        writer.add_tensor(tensor_name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"tensors": len(tensors), "vocabulary": len(tokens), "parameters": int(sum(a.size for a in tensors.values()))}


def ollama_template(tokenizer) -> tuple[str, str]:
    """The model's chat template as an Ollama Go template, and the text that ends an answer.

    Rendered from the real template with marker texts in place of the system prompt, question and answer,
    so Ollama builds the same text as training did (system prompt folded where the template has none).
    """
    from farense_guide.chat_template import render

    conversation = [{"role": "system", "content": SYSTEM_MARK}, {"role": "user", "content": USER_MARK}]
    prompt = render(tokenizer, conversation, add_generation_prompt=True)
    full = render(tokenizer, [*conversation, {"role": "assistant", "content": ANSWER_MARK}])
    if not full.startswith(prompt.rstrip()) or ANSWER_MARK not in full:
        raise FarenseError("o molde de chat do modelo não tem uma forma que o Modelfile do Ollama possa reproduzir.")
    end_of_answer = full.split(ANSWER_MARK, 1)[1]
    bos = getattr(tokenizer, "bos_token", None)
    adds_bos = bos is not None and tokenizer.encode("a")[:1] == [tokenizer.bos_token_id]
    if adds_bos and prompt.startswith(bos):  # llama.cpp adds BOS itself, as this tokenizer does
        prompt = prompt[len(bos):]
    template = prompt.replace(SYSTEM_MARK, "{{ .System }}").replace(USER_MARK, "{{ .Prompt }}") + "{{ .Response }}" + end_of_answer
    return template, end_of_answer.strip()


def modelfile(gguf_name: str, template: str, stop: str, system: str, run_name: str) -> str:
    for text in (template, system):
        if '"""' in text:
            raise FarenseError('o molde ou a mensagem de sistema contêm """, que o Modelfile não consegue citar.')
    lines = [
        f"# Gerado por farense-guide export a partir de runs/{run_name}: ollama create farense -f Modelfile",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{template}"""',
        f'SYSTEM """{system}"""',
    ]
    if stop:
        lines.append(f'PARAMETER stop "{stop}"')
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def data_system_prompt(data_folder: Path) -> str:
    """The system prompt of the training data (the most common one), else the package's."""
    from collections import Counter

    from farense_guide.data.records import FARENSE_SYSTEM_PROMPT, read_jsonl

    path = data_folder / "train.jsonl"
    prompts = Counter(r["messages"][0]["content"] for r in read_jsonl(path) if r.get("messages", [{}])[0].get("role") == "system") \
        if path.is_file() else Counter()
    return prompts.most_common(1)[0][0] if prompts else FARENSE_SYSTEM_PROMPT


def export_run(run_path: Path, output: Path | None = None) -> dict:
    """Fuse if needed (with its check), then write <run>-f16.gguf, Modelfile and export.json into runs/<name>/export/."""
    from transformers import AutoTokenizer

    from farense_guide.steps.fuse import fuse_run, verified_fused_model

    run = RunFolder(run_path)
    info = run.read_info()
    model_folder = verified_fused_model(run)
    if model_folder is None:
        print("Sem modelo fundido verificado deste adaptador: a fundir primeiro (farense-guide fuse).")
        model_folder = Path(fuse_run(run.path)["output"])
    output = Path(output) if output else run.export
    gguf_path = output / f"{info.name}-f16.gguf"
    written = {}
    safe_write(gguf_path, lambda partial: written.update(write_gguf(model_folder, partial, f"farense-{info.name}")))
    template, stop = ollama_template(AutoTokenizer.from_pretrained(str(model_folder)))
    system = data_system_prompt(Path(info.profile.data))
    safe_write(output / "Modelfile", modelfile(gguf_path.name, template, stop, system, info.name))
    report = {"run": info.name, "model": str(model_folder), "gguf": str(gguf_path), "bytes": gguf_path.stat().st_size,
              "sha256": file_sha256(gguf_path), **written, "modelfile": str(output / "Modelfile")}
    write_json(output / "export.json", report)
    return report
