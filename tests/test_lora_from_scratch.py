"""The LoRA layer written from scratch in chapter 6 (snippets/06_lora_do_zero.py) against mlx-lm's LoRALinear."""

import runpy

import mlx.core as mx
import mlx.nn as nn
import pytest
from conftest import ROOT
from mlx_lm.tuner.lora import LoRALinear

SNIPPET = ROOT / "snippets" / "06_lora_do_zero.py"


@pytest.fixture(scope="module")
def snippet():
    """The snippet's names after running it whole (its own asserts included)."""
    return runpy.run_path(str(SNIPPET))


def matched(snippet, base, rank, scale):
    """Our layer and mlx-lm's over the same base, with the same random A and a non-zero B."""
    ours = snippet["CamadaLoRA"](base, rank=rank, scale=scale)
    ours.lora_b = 0.02 * mx.random.normal(ours.lora_b.shape)
    theirs = LoRALinear.from_base(base, r=rank, scale=scale)
    theirs.lora_a, theirs.lora_b = ours.lora_a, ours.lora_b
    return ours, theirs


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "4 bits"])
@pytest.mark.parametrize("rank, scale", [(1, 1.0), (8, 20.0), (16, 2.0)])
def test_the_layer_from_scratch_gives_the_output_of_mlx_lm_lora_linear(snippet, quantized, rank, scale):
    mx.random.seed(rank)
    base = nn.Linear(256, 96, bias=False)
    if quantized:
        base = nn.QuantizedLinear.from_linear(base, group_size=64, bits=4)
    ours, theirs = matched(snippet, base, rank, scale)
    assert ours.lora_a.shape == theirs.lora_a.shape == (256, rank) and ours.lora_b.shape == (rank, 96)
    x = mx.random.normal((3, 7, 256))
    assert mx.allclose(ours(x), theirs(x), atol=1e-5)
    assert not mx.allclose(ours(x), base(x), atol=1e-3)  # B is not zero: the adapter does change the output


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "4 bits"])
def test_with_b_at_zero_the_layer_is_the_frozen_base_and_only_a_and_b_train(snippet, quantized):
    mx.random.seed(0)
    base = nn.Linear(128, 64, bias=False)
    if quantized:
        base = nn.QuantizedLinear.from_linear(base, group_size=64, bits=4)
    layer = snippet["CamadaLoRA"](base, rank=4)
    x = mx.random.normal((2, 5, 128))
    assert mx.array_equal(layer(x), base(x))
    assert sorted(name for name, _ in snippet["tree_flatten"](layer.trainable_parameters())) == ["lora_a", "lora_b"]
    assert layer.lora_a.dtype == layer.lora_b.dtype == mx.float32


def test_a_float16_input_comes_out_in_float16_as_in_mlx_lm(snippet):
    mx.random.seed(1)
    base = nn.Linear(64, 32, bias=False)
    base.set_dtype(mx.float16)
    ours, theirs = matched(snippet, base, 4, 20.0)
    x = mx.random.normal((2, 64)).astype(mx.float16)
    assert ours(x).dtype == theirs(x).dtype == mx.float16
    assert mx.allclose(ours(x), theirs(x), atol=1e-2)
