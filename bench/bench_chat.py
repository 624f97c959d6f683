"""`farense-guide chat --adapter runs/reference`: the old way of loading the model against the new one, in one run.

Before: `mlx_lm.load(base folder, adapter_path=runs/reference/adapters)`, the adapter on the 4-bit SmolLM2 as its
folder holds it. After: `inference.load_run_model`, the base as the run trained it and `evaluate` scored it (on
the CPU, dequantized to float32). The same test questions, greedy answers up to the evaluation's max tokens, the
two alternated over rounds; the median tokens per second of each (prompt included), and whether the answers are
the same, between the two and against the ones evaluate recorded in predictions.jsonl.

    python bench/bench_chat.py [--questions 4] [--rounds 3] [--max-tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]


def old_answer(model, tokenizer, messages: list[dict], max_tokens: int) -> tuple[str, int]:
    """What chat did before: the rendered text to stream_generate. The answer and how many tokens it took."""
    from mlx_lm import stream_generate

    from farense_guide.chat_template import render

    responses = list(stream_generate(model, tokenizer, render(tokenizer, messages, add_generation_prompt=True), max_tokens=max_tokens))
    return "".join(r.text for r in responses), len(responses)  # one response per generated token


def new_answer(model, tokenizer, messages: list[dict], max_tokens: int) -> tuple[str, int]:
    """What chat does now (inference.stream_answer), and how many tokens the answer took."""
    from farense_guide.inference import stream_answer

    pieces = []
    text = stream_answer(model, tokenizer, messages, max_tokens, pieces.append)
    return text, len(pieces)  # one piece per generated token


def one_round(model, tokenizer, conversations: list[list[dict]], max_tokens: int, answer) -> tuple[list[str], float]:
    """The answers to every conversation, and the tokens per second over all of them."""
    start = time.perf_counter()
    answers, tokens = [], 0
    for messages in conversations:
        text, count = answer(model, tokenizer, messages, max_tokens)
        answers.append(text.strip())
        tokens += count
    return answers, tokens / (time.perf_counter() - start)


def alternated_rounds(paths: dict, conversations: list[list[dict]], max_tokens: int, rounds: int) -> tuple[dict, dict]:
    """Each path's tokens per second in every round (who goes first alternates) and its answers."""
    rates, answers = {name: [] for name in paths}, {}
    for round_index in range(rounds):
        for name in list(paths) if round_index % 2 == 0 else list(reversed(paths)):
            (model, tokenizer), answer = paths[name]
            answers[name], rate = one_round(model, tokenizer, conversations, max_tokens, answer)
            rates[name].append(rate)
    return rates, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, help="por omissão, o da avaliação de runs/reference")
    args = parser.parse_args()

    from mlx_lm import load

    from farense_guide.inference import load_run_model
    from farense_guide.models import resolve_model
    from farense_guide.runs import RunFolder, read_json
    from farense_guide.scoring import load_items

    run = RunFolder(ROOT / "runs" / "reference")
    info = run.read_info()
    max_tokens = args.max_tokens or read_json(run.evaluation_report)["max_tokens"]
    recorded = {row["id"]: row["tuned_answer"] for row in map(json.loads, run.predictions.read_text(encoding="utf-8").splitlines())}
    items = [i for i in load_items(ROOT / info.profile.data / "test.jsonl") if len(i.messages) == 2][:args.questions]
    conversations = [item.messages for item in items]
    paths = {"antes": (load(str(resolve_model(info.profile.model)), adapter_path=str(run.adapters)), old_answer),
             "depois": (load_run_model(info.profile, info.backend, run.adapters), new_answer)}
    for (model, tokenizer), answer in paths.values():
        answer(model, tokenizer, conversations[0], 4)  # warm-up

    rates, answers = alternated_rounds(paths, conversations, max_tokens, args.rounds)
    before, after = statistics.median(rates["antes"]), statistics.median(rates["depois"])
    same = sum(a == b for a, b in zip(answers["antes"], answers["depois"]))
    as_evaluated = {name: sum(a == recorded[i.item_id] for a, i in zip(answers[name], items)) for name in paths}
    n = len(items)
    print(f"Conversa com o adaptador de runs/reference (SmolLM2-135M, {info.backend.method}), {n} perguntas de teste, "
          f"até {max_tokens} tokens, {args.rounds} rondas alternadas (mediana):")
    print(f"  antes (mlx_lm.load com adapter_path, base a 4 bits): {before:.1f} tokens/s · depois (inference.load_run_model): "
          f"{after:.1f} tokens/s · razão {after / before:.1f}x")
    print(f"  respostas iguais entre os dois: {same}/{n} · iguais às da avaliação (predictions.jsonl): "
          f"antes {as_evaluated['antes']}/{n}, depois {as_evaluated['depois']}/{n}")


if __name__ == "__main__":
    main()
