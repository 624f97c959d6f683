"""Batched against one-at-a-time greedy generation on SmolLM2-135M, in one run.

The same 16 test questions of data/ and the same base (the float32 copy that CPU training
uses); mlx-lm's `batch_generate` against `generate` called once per question.

    python bench/bench_generation.py [--questions 16] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()

    from mlx_lm import load
    from mlx_lm.generate import batch_generate, generate

    from farense_guide.inference import prompt_tokens
    from farense_guide.models import float32_model
    from farense_guide.scoring import load_items

    model, tokenizer = load(str(float32_model("smollm2")))
    items = load_items(ROOT / "data" / "test.jsonl", args.questions)
    prompts = [prompt_tokens(tokenizer, item.messages) for item in items]
    generate(model, tokenizer, prompt=prompts[0], max_tokens=4)  # warm-up

    start = time.perf_counter()
    single = [generate(model, tokenizer, prompt=p, max_tokens=args.max_tokens) for p in prompts]
    single_seconds = time.perf_counter() - start
    start = time.perf_counter()
    batched = batch_generate(model, tokenizer, prompts, max_tokens=args.max_tokens).texts
    batched_seconds = time.perf_counter() - start

    def tokens(texts):
        return sum(len(tokenizer.encode(t, add_special_tokens=False)) for t in texts)

    single_rate, batched_rate = tokens(single) / single_seconds, tokens(batched) / batched_seconds
    same = sum(a.strip() == b.strip() for a, b in zip(single, batched))
    print(f"Geração greedy, SmolLM2-135M float32, {len(prompts)} perguntas de teste, até {args.max_tokens} tokens:")
    print(f"  uma a uma: {single_rate:.1f} tokens/s · em lote: {batched_rate:.1f} tokens/s · razão {batched_rate / single_rate:.1f}x "
          f"· respostas iguais: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
