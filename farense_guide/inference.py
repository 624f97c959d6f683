"""One way to load a model: the base as a run trained it (float32 LoRA on the CPU, 4-bit QLoRA on a GPU),
with or without its adapter. Training, evaluation, chat and fuse all load through here, so chat answers
with exactly the model that evaluate scored.

MLX is imported inside the functions: this module is read by preflight before MLX is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from farense_guide.config import Profile
from farense_guide.runs import Backend


def default_device() -> str:
    """'gpu' (Metal or CUDA) or 'cpu': where MLX computes by default."""
    import mlx.core as mx

    return "gpu" if mx.default_device().type == mx.gpu else "cpu"


def default_quantized(profile: Profile, device: str) -> bool:
    """QLoRA on a GPU (Metal, CUDA); on the CPU 4-bit matmuls are slow, so the base is dequantized."""
    return profile.quantized and device == "gpu"


def load_base(profile: Profile, quantized: bool | None, announce: bool = True):
    """Model, tokenizer and the Backend actually used. `quantized=None`: the default for this device."""
    from mlx_lm import load

    from farense_guide.models import dequantized_float32, resolve_model

    folder = resolve_model(profile.model)
    model, tokenizer, config = load(str(folder), return_config=True)
    device = default_device()
    base_bits = (config.get("quantization") or {}).get("bits")
    keep_quantized = base_bits is not None and (quantized if quantized is not None else default_quantized(profile, device))
    if base_bits and not keep_quantized:
        model = dequantized_float32(model)
        if quantized is None and announce:
            print("Aviso: no CPU a base é desquantizada para float32 (LoRA simples, ~30x mais rápido que QLoRA); "
                  "--quantized força QLoRA a 4 bits.", file=sys.stderr)
    method = f"QLoRA (base a {base_bits} bits)" if keep_quantized else "LoRA (base em float32)" if base_bits else "LoRA"
    return model, tokenizer, Backend(device=device, method=method, base_bits=base_bits if keep_quantized else None, model_path=str(folder))


def load_run_model(profile: Profile, backend: Backend, adapter: Path | None):
    """The base exactly as the run trained it (its recorded precision), with `adapter` on it or none; in eval mode."""
    from mlx_lm.tuner.utils import load_adapters

    model, tokenizer, _ = load_base(profile, quantized=backend.base_bits is not None, announce=False)
    if adapter is not None:
        model = load_adapters(model, str(adapter))
    model.eval()
    return model, tokenizer
