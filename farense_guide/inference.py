"""One way to load a model and one way to make it answer.

Loading: the base as a run trained it (float32 LoRA on the CPU, 4-bit QLoRA on a GPU), with or
without its adapter. Training, evaluation, chat and fuse all load through here, so chat answers
with exactly the model that evaluate scored.

Answering: every prompt is the conversation rendered by `chat_template.render` (the system prompt
folded where the template has no system role), in tokens (`prompt_tokens`), and every answer is greedy.
`greedy_answers` answers many conversations with mlx-lm's batch generation (evaluate, fuse);
`stream_answer` answers one as it is generated (chat). Both run the same model on the same tokens; a
batch pads its prompts, which moves log-probabilities by rounding alone (about 1e-5 in float32), so
the two give the same answer unless two tokens tie that closely (bench/bench_chat.py compares chat's
answers with those evaluate recorded). `answer_log_probs` scores given answers.

MLX is imported inside the functions: this module is read by preflight before MLX is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from farense_guide.chat_template import render
from farense_guide.config import Profile
from farense_guide.runs import Backend, read_json

GENERATION_BATCH = 16  # prompts per batch generation
SCORING_BATCH = 8  # answers per forward pass when scoring

FLOAT32_METHOD = "LoRA (base em float32)"  # Backend.method of a quantized base dequantized for training
Progress = Callable[[int], None]  # told how many items were just done


def no_progress(done: int) -> None:
    pass


# ── loading ─────────────────────────────────────────────────────────────────────────────────────


def default_device() -> str:
    """'gpu' (Metal or CUDA) or 'cpu': where MLX computes by default."""
    import mlx.core as mx

    return "gpu" if mx.default_device().type == mx.gpu else "cpu"


def default_quantized(profile: Profile, device: str) -> bool:
    """QLoRA on a GPU (Metal, CUDA); on the CPU 4-bit matmuls are slow, so the base is dequantized."""
    return profile.quantized and device == "gpu"


def load_model(spec: str, quantized: bool):
    """Model, tokenizer and Backend of the base `spec`: a quantized base stays so if `quantized`, else becomes float32."""
    from mlx_lm import load

    from farense_guide.models import dequantized_float32, resolve_model

    folder = resolve_model(spec)
    model, tokenizer, config = load(str(folder), return_config=True)
    base_bits = (config.get("quantization") or {}).get("bits")
    keep_quantized = base_bits is not None and quantized
    if base_bits and not keep_quantized:
        model = dequantized_float32(model)
    method = f"QLoRA (base a {base_bits} bits)" if keep_quantized else FLOAT32_METHOD if base_bits else "LoRA"
    backend = Backend(device=default_device(), method=method, base_bits=base_bits if keep_quantized else None, model_path=str(folder))
    return model, tokenizer, backend


def load_base(profile: Profile, quantized: bool | None, announce: bool = True):
    """Model, tokenizer and the Backend actually used. `quantized=None`: the default for this device."""
    model, tokenizer, backend = load_model(profile.model, default_quantized(profile, default_device()) if quantized is None else quantized)
    if quantized is None and announce and backend.method == FLOAT32_METHOD:
        print("Aviso: no CPU a base é desquantizada para float32 (LoRA simples, ~30x mais rápido que QLoRA); "
              "--quantized força QLoRA a 4 bits.", file=sys.stderr)
    return model, tokenizer, backend


def with_adapter(model, adapter: Path | None):
    """`model` with the LoRA adapter of the folder `adapter` on it (or none), in eval mode."""
    from mlx_lm.tuner.utils import load_adapters

    if adapter is not None:
        model = load_adapters(model, str(adapter))
    model.eval()
    return model


def load_run_model(profile: Profile, backend: Backend, adapter: Path | None):
    """The base exactly as the run trained it (its recorded precision), with `adapter` on it or none; in eval mode."""
    model, tokenizer, _ = load_model(profile.model, quantized=backend.base_bits is not None)
    return with_adapter(model, adapter), tokenizer


def trained_base_folder(profile: Profile, backend: Backend) -> Path:
    """A model folder holding the base exactly as the run trained it, for tools that load folders (mlx_lm.server,
    mlx_lm.generate): the float32 copy where training dequantized a quantized base, else the base's own folder."""
    from farense_guide.models import float32_model, resolve_model

    folder = resolve_model(profile.model)
    dequantized = backend.base_bits is None and read_json(folder / "config.json").get("quantization")
    return float32_model(profile.model) if dequantized else folder


def load_device_model(spec: str, adapter: Path | None):
    """The base `spec` at the precision training takes on this device by default (4 bits on a GPU, float32 on the CPU),
    with `adapter` on it or none: for an adapter without its run.json."""
    model, tokenizer, _ = load_model(spec, quantized=default_device() == "gpu")
    return with_adapter(model, adapter), tokenizer


# ── answering ───────────────────────────────────────────────────────────────────────────────────


def prompt_tokens(tokenizer, messages: list[dict]) -> list[int]:
    """The conversation up to the model's turn, as the model's template writes it, in tokens."""
    text = render(tokenizer, messages, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def greedy_answers(model, tokenizer, conversations: list[list[dict]], max_tokens: int, progress: Progress = no_progress) -> list[str]:
    """The most likely answer to each conversation, token by token, GENERATION_BATCH conversations at a time; stripped."""
    from mlx_lm.generate import batch_generate

    answers = []
    for start in range(0, len(conversations), GENERATION_BATCH):
        chunk = conversations[start:start + GENERATION_BATCH]
        response = batch_generate(model, tokenizer, [prompt_tokens(tokenizer, messages) for messages in chunk], max_tokens=max_tokens)
        answers += [text.strip() for text in response.texts]
        progress(len(chunk))
    return answers


def answer_log_probs(model, tokenizer, pairs: list[tuple[list[dict], str]], progress: Progress = no_progress) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each answer given its conversation, end-of-turn included."""
    sequences = [answer_sequence(tokenizer, messages, answer) for messages, answer in pairs]
    results = []
    for start in range(0, len(sequences), SCORING_BATCH):
        chunk = sequences[start:start + SCORING_BATCH]
        results += scored_batch(model, chunk)
        progress(len(chunk))
    return results


def answer_sequence(tokenizer, messages: list[dict], answer: str) -> tuple[list[int], int]:
    """The tokens of the conversation with `answer` as the model's turn, and where the answer starts."""
    prompt = prompt_tokens(tokenizer, messages)
    full_text = render(tokenizer, messages + [{"role": "assistant", "content": answer}])
    return tokenizer.encode(full_text.rstrip("\n"), add_special_tokens=False), len(prompt)


def scored_batch(model, chunk: list[tuple[list[int], int]]) -> list[tuple[float, int]]:
    """One forward pass over right-padded sequences: the summed log-probability of each answer part, and its length."""
    import mlx.core as mx

    width = max(len(tokens) for tokens, _ in chunk)
    batch = mx.array([tokens + [0] * (width - len(tokens)) for tokens, _ in chunk])
    logits = model(batch[:, :-1]).astype(mx.float32)
    log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    picked = mx.take_along_axis(log_probs, batch[:, 1:, None], axis=-1).squeeze(-1)
    positions = mx.arange(width - 1)[None, :]
    starts = mx.array([offset - 1 for _, offset in chunk])[:, None]
    ends = mx.array([len(tokens) - 1 for tokens, _ in chunk])[:, None]
    mask = (positions >= starts) & (positions < ends)
    sums = (picked * mask).sum(axis=1)
    counts = mask.sum(axis=1)
    mx.eval(sums, counts)
    return list(zip(sums.tolist(), counts.tolist()))


def stream_answer(model, tokenizer, messages: list[dict], max_tokens: int = 200, stream: Callable[[str], None] | None = None) -> str:
    """The greedy answer to a conversation, as it is generated; `stream` gets each piece of text."""
    from mlx_lm import stream_generate

    prompt = prompt_tokens(tokenizer, messages)
    pieces = []
    for response in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        pieces.append(response.text)
        if stream:
            stream(response.text)
    return "".join(pieces)
