"""The fast BLAS candidates against MLX's bundled reference BLAS on Linux: float32 matmul and a LoRA step.

A BLAS is chosen when a process starts, so the same measurement runs in one child process per
candidate (LD_PRELOAD of MKL from PyPI, of Debian's OpenBLAS where installed, of nothing), in
alternating rounds of this one run; the medians and their ratios to the reference are printed.

    python bench/bench_blas.py [--tokens 128] [--rounds 2] [--openblas-coretype SKYLAKEX]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from farense_guide import blas
from farense_guide.machine import cpu_name


def time_matmul(size: int = 1024, repeats: int = 5) -> float:
    import mlx.core as mx

    a, b = mx.random.normal((size, size)), mx.random.normal((size, size))
    mx.eval(a @ b)
    start = time.perf_counter()
    for _ in range(repeats):
        mx.eval(a @ b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9  # GFLOP/s


def time_lora_step(tokens: int) -> float:
    """Tokens/s of one LoRA training step on SmolLM2-135M with a float32 base."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx.utils import tree_map
    from mlx_lm import load
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import dequantize_model

    from farense_guide.models import embedded_model

    model, _ = load(str(embedded_model()))
    model = dequantize_model(model)
    model.update(tree_map(lambda p: p.astype(mx.float32), model.parameters()))
    model.freeze()
    linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    optimizer = optim.Adam(learning_rate=1e-4)
    loss_and_grad = nn.value_and_grad(model, default_loss)
    batch = mx.random.randint(0, 49152, (2, tokens // 2))
    lengths = mx.array([[0, tokens // 2]] * 2)

    def step():
        (loss, _), grads = loss_and_grad(model, batch, lengths)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state, loss)

    step()  # warm-up
    start = time.perf_counter()
    step()
    return tokens / (time.perf_counter() - start)


def worker(tokens: int) -> None:
    matmul, lora = time_matmul(), time_lora_step(tokens)  # imports MLX, so its BLAS is mapped
    print(json.dumps({"blas": blas.blas_in_use(), "matmul_gflops": matmul, "lora_tokens_per_s": lora}))


def measure(env: dict[str, str], tokens: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", "--tokens", str(tokens)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def candidates(plain: dict[str, str], coretype: str | None) -> dict[str, tuple[str, dict[str, str]]]:
    """label -> (the BLAS the child must map, its environment)."""
    found = {"BLAS de referência": ("reference", plain)}
    for fast in blas.available():
        found[fast.label] = (fast.name, blas.blas_env(plain, fast.name))
        if fast.name == "openblas" and coretype:
            found[f"{fast.label}, OPENBLAS_CORETYPE={coretype}"] = ("openblas", {**blas.blas_env(plain, "openblas"), "OPENBLAS_CORETYPE": coretype})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per training step (batch 2)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--openblas-coretype", help="also OpenBLAS with this OPENBLAS_CORETYPE (its own CPU detection may pick a slow kernel)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.tokens)
    plain = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", blas.CHOICE_VAR, "OPENBLAS_CORETYPE")}
    plain.setdefault("TRANSFORMERS_VERBOSITY", "error")
    runs = candidates(plain, args.openblas_coretype)
    results: dict[str, list[dict]] = {label: [] for label in runs}
    for _ in range(args.rounds):
        for label, (expected, env) in runs.items():
            result = measure(env, args.tokens)
            assert result["blas"] == expected, (label, result)
            results[label].append(result)
    median = {label: {key: statistics.median(r[key] for r in rows) for key in ("matmul_gflops", "lora_tokens_per_s")}
              for label, rows in results.items()}
    reference = median["BLAS de referência"]
    print(f"BLAS para o mlx[cpu] em Linux, medianas de {args.rounds} rondas alternadas na mesma execução "
          f"(CPU: {cpu_name()}, {os.cpu_count()} núcleos):")
    print(f"| BLAS | matmul float32 1024x1024 (GFLOP/s) | razão | passo LoRA SmolLM2-135M float32, {args.tokens} tokens (tokens/s) | razão |")
    print("|---|---:|---:|---:|---:|")
    for label, values in median.items():
        print(f"| {label} | {values['matmul_gflops']:.1f} | {values['matmul_gflops'] / reference['matmul_gflops']:.1f}x "
              f"| {values['lora_tokens_per_s']:.1f} | {values['lora_tokens_per_s'] / reference['lora_tokens_per_s']:.1f}x |")
    chosen = blas.find_fast_blas("")
    print(f"Escolhido por omissão (farense_guide/blas.py): {chosen.label if chosen else 'nenhum'}")


if __name__ == "__main__":
    main()
