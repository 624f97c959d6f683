"""OpenBLAS against MLX's bundled reference BLAS on Linux: float32 matmul and one LoRA step.

A BLAS is chosen when a process starts, so the same measurement runs in two child
processes (with and without LD_PRELOAD) of this one run, and the ratio is printed.

    python bench/bench_openblas.py [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from farense_guide import blas


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per training step (batch 2)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.tokens)
    if blas.find_openblas() is None:
        sys.exit(f"OpenBLAS não encontrado: {blas.INSTALL_HINT}")
    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    plain.setdefault("TRANSFORMERS_VERBOSITY", "error")
    reference = measure(plain, args.tokens)
    openblas = measure(blas.openblas_env(plain), args.tokens)
    assert reference["blas"] == "reference" and openblas["blas"] == "openblas", (reference, openblas)
    print("OpenBLAS vs BLAS de referência (mlx[cpu], Linux), na mesma execução:")
    print(f"  matmul float32 1024x1024: {reference['matmul_gflops']:.1f} -> {openblas['matmul_gflops']:.1f} GFLOP/s"
          f"  (razão {openblas['matmul_gflops'] / reference['matmul_gflops']:.1f}x)")
    print(f"  passo LoRA SmolLM2-135M float32, {args.tokens} tokens: {reference['lora_tokens_per_s']:.1f} -> "
          f"{openblas['lora_tokens_per_s']:.1f} tokens/s  (razão {openblas['lora_tokens_per_s'] / reference['lora_tokens_per_s']:.1f}x)")


if __name__ == "__main__":
    main()
