"""One way to load a model and one way to make it answer.

Loading: the base as a run trained it (float32 LoRA on the CPU, 4-bit QLoRA on a GPU), with or
without its adapter. Training, evaluation, chat and fuse all load through here, so chat answers
with exactly the model that evaluate scored.

Answering: every prompt is the conversation rendered by `chat_template.render` (the system prompt
folded where the template has no system role), in tokens (`prompt_tokens`), and every answer is greedy.
`greedy_answers` answers many conversations with mlx-lm's batch generation (evaluate, fuse);
`stream_answer` answers one as it is generated (chat). Both run the same model on the same tokens; a
batch pads its prompts and starts from a shared prompt's cache, which moves log-probabilities by
rounding alone (about 1e-5 in float32), so the two give the same answer unless two tokens tie that
closely (tests/test_evaluate.py; bench/bench_chat.py compares chat's answers with those evaluate
recorded). `answer_log_probs` scores given answers, running no prompt twice (see there).

MLX is imported inside the functions: this module is read by preflight before MLX is needed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from farense_guide.chat_template import render
from farense_guide.config import Profile
from farense_guide.runs import Backend, read_json

GENERATION_BATCH = 32  # answers generated together
SCORING_TOKENS = 1024  # answer tokens per forward pass when scoring (padding included)
SCORING_GROUP = 160  # answers whose prompt caches are held at once

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
    """The most likely answer to each conversation, token by token; stripped.

    The prompt every conversation starts with (the system message) runs once; mlx-lm's batch generator then runs
    up to GENERATION_BATCH answers at a time, each stopping at its end-of-turn token and making room for the next."""
    from mlx_lm.generate import BatchGenerator

    if not conversations:
        return []
    prompts = [prompt_tokens(tokenizer, messages) for messages in conversations]
    shared = shared_prompt_cache(model, common_prefix(prompts))
    generator = BatchGenerator(model, stop_tokens=[[token] for token in tokenizer.eos_token_ids], completion_batch_size=GENERATION_BATCH)
    uids = generator.insert([prompt[len(shared.tokens):] for prompt in prompts], [max_tokens] * len(prompts),
                            caches=[shared.copies(1) for _ in prompts] if shared.tokens else None)
    tokens = {uid: [] for uid in uids}
    try:
        while responses := generator.next_generated():
            for response in responses:
                if response.finish_reason != "stop":
                    tokens[response.uid].append(response.token)
                if response.finish_reason is not None:
                    progress(1)
    finally:
        generator.close()
    return [tokenizer.decode(tokens[uid]).strip() for uid in uids]


def answer_log_probs(model, tokenizer, questions: list[tuple[list[dict], list[str]]],
                     progress: Progress = no_progress) -> list[list[tuple[float, int]]]:
    """For each conversation and its candidate answers: (sum of log-probabilities, token count) of each answer given
    the conversation, end-of-turn included.

    No prompt runs more than once: the part every prompt shares (the system message) runs first, then each
    conversation's own part on top of its KV cache; the answers then run on their prompts' caches, in batches of
    answers of similar length from several questions, so that little is padding."""
    candidates = [answer_sequence(tokenizer, messages, answer) for messages, answers in questions for answer in answers]
    scored: list[tuple[float, int]] = []
    for start in range(0, len(candidates), SCORING_GROUP):
        scored += scored_candidates(model, candidates[start:start + SCORING_GROUP], progress)
    per_question, position = [], 0
    for _, answers in questions:
        per_question.append(scored[position:position + len(answers)])
        position += len(answers)
    return per_question


def scored_candidates(model, candidates: list[tuple[list[int], int]], progress: Progress) -> list[tuple[float, int]]:
    """(summed log-probability, count) of the answer part of each (tokens, answer offset)."""
    prompts = list(dict.fromkeys(tuple(tokens[:offset]) for tokens, offset in candidates))
    shared = shared_prompt_cache(model, common_prefix([list(prompt) for prompt in prompts]))
    caches = {prompt: prompt_cache(model, shared, list(prompt)) for prompt in prompts}
    answers = [(caches[tuple(tokens[:offset])], tokens[offset:]) for tokens, offset in candidates]
    scored = [(0.0, 0)] * len(answers)
    for batch in length_batches([answer for _, answer in answers]):
        for index, result in zip(batch, scored_answers(model, [answers[index] for index in batch])):
            scored[index] = result
        progress(len(batch))
    return scored


def answer_sequence(tokenizer, messages: list[dict], answer: str) -> tuple[list[int], int]:
    """The tokens of the conversation with `answer` as the model's turn, and where the answer starts."""
    prompt = prompt_tokens(tokenizer, messages)
    full_text = render(tokenizer, messages + [{"role": "assistant", "content": answer}])
    return tokenizer.encode(full_text.rstrip("\n"), add_special_tokens=False), len(prompt)


def common_prefix(prompts: list[list[int]]) -> list[int]:
    """The tokens every prompt starts with, leaving each at least one token of its own (its last logits are needed)."""
    shortest = min(len(prompt) for prompt in prompts)
    length = 0
    while length < shortest - 1 and all(prompt[length] == prompts[0][length] for prompt in prompts):
        length += 1
    return prompts[0][:length]


def length_batches(sequences: list[list[int]]) -> list[list[int]]:
    """Indices of `sequences`, shortest first, in batches of at most SCORING_TOKENS tokens (padding included)."""
    order = sorted(range(len(sequences)), key=lambda index: len(sequences[index]))
    batches, batch = [], []
    for index in order:
        if batch and (len(batch) + 1) * len(sequences[index]) > SCORING_TOKENS:
            batches.append(batch)
            batch = []
        batch.append(index)
    return batches + [batch] if batch else batches


@dataclass
class PromptCache:
    """Some tokens' KV cache (batch 1, an mlx-lm KVCache per layer; none for no tokens) and the logits of their last
    position."""

    tokens: list[int]
    layers: list
    last_logits: object = None

    def copies(self, count: int) -> list | None:
        """`count` rows of this cache, as new mlx-lm caches that a forward pass extends."""
        import mlx.core as mx
        from mlx_lm.models.cache import KVCache

        caches = []
        for layer in self.layers:
            cache = KVCache()
            cache.keys, cache.values = mx.repeat(layer.keys, count, axis=0), mx.repeat(layer.values, count, axis=0)
            cache.offset = layer.offset
            caches.append(cache)
        return caches or None


def shared_prompt_cache(model, tokens: list[int]) -> PromptCache:
    """The KV cache of `tokens`, for several prompts to start from; empty when the model's cache is not a plain
    KV cache (which cannot be copied row by row)."""
    from mlx_lm.models.cache import KVCache, make_prompt_cache

    if not tokens or not all(type(cache) is KVCache for cache in make_prompt_cache(model)):
        return PromptCache([], [])
    return prompt_cache(model, PromptCache([], []), tokens)


def prompt_cache(model, prefix: PromptCache, tokens: list[int]) -> PromptCache:
    """The KV cache of `tokens` (which start with prefix.tokens), computed on top of `prefix`."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    caches = prefix.copies(1) or make_prompt_cache(model)
    logits = model(mx.array(tokens[len(prefix.tokens):])[None], cache=caches)[0, -1]
    for cache in caches:
        cache.keys, cache.values = cache.keys[..., :cache.offset, :], cache.values[..., :cache.offset, :]
    mx.eval(logits, [(cache.keys, cache.values) for cache in caches])
    return PromptCache(tokens, caches, logits)


def scored_answers(model, answers: list[tuple[PromptCache, list[int]]]) -> list[tuple[float, int]]:
    """(summed log-probability, length) of each answer after its prompt, in one forward pass over the answers,
    right-padded, on their prompts' caches (left-padded to one length by mlx-lm's BatchKVCache)."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm.models.cache import BatchKVCache

    width = max(len(tokens) for _, tokens in answers)
    first = mx.stack([prompt.last_logits for prompt, _ in answers])[:, None]  # each answer's first token
    if width > 1:
        batch = mx.array([tokens[:-1] + [0] * (width - len(tokens)) for _, tokens in answers])
        caches = [BatchKVCache.merge([prompt.layers[layer] for prompt, _ in answers]) for layer in range(len(answers[0][0].layers))]
        logits = mx.concatenate([first, model(batch, cache=caches)], axis=1)
    else:
        logits = first
    # Only real positions: logits[row, p] predicts token p of the answer.
    rows = [(row, position) for row, (_, tokens) in enumerate(answers) for position in range(len(tokens))]
    picked = logits.reshape(-1, logits.shape[-1])[mx.array([row * width + position for row, position in rows])]
    targets = mx.array([answers[row][1][position] for row, position in rows])
    target_logits = mx.take_along_axis(picked, targets[:, None], axis=-1).squeeze(-1)
    mx.eval(picked, target_logits)
    # numpy's exp is several times faster than MLX's on the CPU, and this is the whole vocabulary at every position;
    # float32 moves a token's log-probability by ~2e-6 against float64 and takes a fifth of the time.
    values = np.array(picked.astype(mx.float32))
    peak = values.max(axis=-1)
    log_probs = np.array(target_logits.astype(mx.float32)) - (np.log(np.exp(values - peak[:, None]).sum(axis=-1)) + peak)
    sums = np.zeros(len(answers))
    np.add.at(sums, [row for row, _ in rows], log_probs)
    return [(float(total), len(tokens)) for total, (_, tokens) in zip(sums, answers)]


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
