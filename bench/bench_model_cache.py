"""First conversion of the embedded SmolLM2 against a cache hit, in one process.

    python bench/bench_model_cache.py
"""

from __future__ import annotations

import os
import tempfile
import time


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FARENSE_CACHE"] = cache
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from farense_guide.models import embedded_model

        start = time.perf_counter()
        first = embedded_model()
        convert = time.perf_counter() - start
        start = time.perf_counter()
        second = embedded_model()
        hit = time.perf_counter() - start
        assert first == second
    print("Cache do modelo embutido (SmolLM2-135M GGUF -> MLX):")
    print(f"  conversão: {convert:.2f} s · acerto na cache: {hit:.3f} s  (razão {convert / hit:.0f}x)")


if __name__ == "__main__":
    main()
