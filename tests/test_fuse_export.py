"""fuse (merge in float, check against base + adapter) and export (GGUF + Modelfile), on the tiny model."""

import json
import re
import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from conftest import run_cli
from test_chat_template import MISTRAL_TEMPLATE


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("fuse-runs")
    result = run_cli("train", "--profile", "tiny", "--runs-dir", str(runs), "--run-name", "f", "--max-steps", "12",
                     "--learning-rate", "0.01", "--set", "val_batches=2", "--set", "steps_per_eval=6")
    assert result.returncode == 0, result.stderr
    return runs / "f"


@pytest.fixture(scope="module")
def fused_run(trained_run):
    from farense_guide.steps.fuse import fuse_run

    check = fuse_run(trained_run, limit=6, max_tokens=12)
    assert check["passed"] and check["output"] == str(trained_run / "fused")
    return trained_run


def test_fuse_says_how_many_answers_match_and_where_it_wrote(trained_run, tmp_path):
    copy = tmp_path / "f"
    shutil.copytree(trained_run, copy, ignore=shutil.ignore_patterns("fused*", "fuse_check*", "export", "checkpoints"))
    result = run_cli("fuse", str(copy), "--limit", "2", "--max-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Respostas iguais: 2 de 2 · F1 base \+ adaptador \d\.\d{3} · F1 fundido \d\.\d{3}$", result.stdout, re.M), result.stdout
    assert f"Modelo fundido em {copy / 'fused'}; verificação em {copy / 'fuse_check'}" in result.stdout


def test_fuse_never_replaces_a_folder_it_did_not_write(trained_run, tmp_path):
    """--output naming a folder of the user's by mistake: refused before any work, the folder as it was."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_bytes(b"not a model")
    result = run_cli("fuse", str(trained_run), "--output", str(mine), "--limit", "2", "--max-tokens", "4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"erro: {mine}: a pasta já existe, não está vazia e não é um modelo fundido" in result.stderr
    assert [path.name for path in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_bytes() == b"not a model"
    assert not (tmp_path / "mine.partial").exists()


def lora_layers(run):
    adapters = mx.load(str(run / "adapters" / "adapters.safetensors"))
    return {name.removesuffix(".lora_a"): (adapters[name], adapters[name.replace("lora_a", "lora_b")])
            for name in adapters if name.endswith(".lora_a")}


def test_fused_weights_are_base_plus_scaled_lora_product(fused_run):
    info = json.loads((fused_run / "run.json").read_text())
    base = mx.load(str(next(iter(sorted(Path(info["backend"]["model_path"]).glob("model*.safetensors"))))))
    fused = mx.load(str(fused_run / "fused" / "model.safetensors"))
    scale = info["profile"]["lora"]["scale"]
    layers = lora_layers(fused_run)
    assert layers
    for name, (a, b) in layers.items():
        expected = base[f"{name}.weight"] + scale * (b.T @ a.T)
        assert mx.allclose(fused[f"{name}.weight"], expected, atol=1e-6).item(), name
        assert not mx.allclose(fused[f"{name}.weight"], base[f"{name}.weight"], atol=1e-6).item(), f"{name}: the adapter changed nothing"
    untouched = [k for k in base if not any(k.startswith(n) for n in layers)]
    assert all(mx.array_equal(fused[k], base[k]).item() for k in untouched)
    assert "quantization" not in json.loads((fused_run / "fused" / "config.json").read_text())


def test_fused_model_gives_the_logits_of_base_plus_adapter(fused_run):
    from mlx_lm import load

    adapted, tokenizer = load(json.loads((fused_run / "run.json").read_text())["backend"]["model_path"],
                              adapter_path=str(fused_run / "adapters"))
    fused, _ = load(str(fused_run / "fused"))
    tokens = mx.array([tokenizer.encode("Quando foi fundado o Farense?")])
    assert mx.allclose(adapted(tokens), fused(tokens), atol=1e-4).item()


def test_fuse_check_is_written_and_passes(fused_run):
    check = json.loads((fused_run / "fuse_check" / "fuse_check.json").read_text())
    assert check["passed"] and check["bits"] is None and check["dtype"] == "float32"
    assert check["comparison"]["items"] == 6 and check["comparison"]["identical"] == 6
    assert check["comparison"]["match_share"] == 1.0 and check["comparison"]["f1_drop"] == 0.0
    answers = [json.loads(line) for line in (fused_run / "fuse_check" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 6 and all(row["identical"] for row in answers)
    assert "6 de 6 (100,0 %)" in (fused_run / "fuse_check" / "FUSE_CHECK.md").read_text()
    provenance = json.loads((fused_run / "fused" / "farense_fuse.json").read_text())
    assert provenance["passed"] and provenance["adapter_sha256"] == check["adapter_sha256"]


def test_a_fuse_beyond_tolerance_fails_loudly_and_keeps_no_model(trained_run, tmp_path):
    output = tmp_path / "fused-2bit"
    result = run_cli("fuse", str(trained_run), "--limit", "6", "--max-tokens", "12", "--bits", "2", "--min-match", "1.0",
                     "--output", str(output))
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(r"erro: a fusão mudou demasiado as respostas: \d de 6 iguais", result.stderr)
    assert "o modelo fundido não foi gravado" in result.stderr
    assert not output.exists() and not output.with_name(output.name + ".partial").exists()
    check = json.loads((trained_run / "fuse_check-2bit" / "fuse_check.json").read_text())
    assert check["passed"] is False and check["bits"] == 2


def test_merging_into_a_4bit_base_keeps_the_delta_that_requantizing_erases():
    """The mlx-lm trap (issue 654): a small LoRA delta rounds away when the sum is quantized again."""
    import mlx.nn as nn
    from mlx_lm.tuner.lora import LoRALinear

    from farense_guide.steps.fuse import merged_linear

    mx.random.seed(0)
    linear = nn.Linear(256, 256, bias=False)
    layer = LoRALinear.from_base(nn.QuantizedLinear.from_linear(linear, group_size=64, bits=4), r=8, scale=1.0)
    layer.lora_b = 0.002 * mx.random.normal(layer.lora_b.shape)  # a delta ~50x smaller than a 4-bit step
    q = layer.linear
    base = mx.dequantize(q.weight, q.scales, q.biases, group_size=q.group_size, bits=q.bits)
    delta = (layer.scale * layer.lora_b.T) @ layer.lora_a.T

    ours = merged_linear(layer, mx.float32).weight - base
    requantized = layer.fuse(dequantize=False)  # what mlx_lm.fuse does without --dequantize
    theirs = mx.dequantize(requantized.weight, requantized.scales, requantized.biases, group_size=64, bits=4) - base

    def kept(change):
        return (mx.sum(change * delta) / mx.sum(delta * delta)).item()  # share of the delta still there

    assert abs(kept(ours) - 1) < 1e-4
    assert mx.abs(ours - delta).max().item() < 1e-5
    assert kept(theirs) < 0.5


def gguf_fields(path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    return reader, {name: field for name, field in reader.fields.items()}


@pytest.fixture(scope="module")
def exported_run(fused_run):
    from farense_guide.steps.export import export_run

    report = export_run(fused_run)
    assert report["gguf"] == str(fused_run / "export" / "f-f16.gguf") and report["tensors"] > 0
    return fused_run


def test_export_needs_a_format_and_says_what_it_wrote(fused_run, tmp_path):
    result = run_cli("export", str(fused_run))
    assert result.returncode == 2 and "--gguf" in result.stderr
    result = run_cli("export", str(fused_run), "--gguf", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^{re.escape(str(tmp_path / 'f-f16.gguf'))}: \d+ tensores, \d+ MB; Modelfile em {re.escape(str(tmp_path / 'Modelfile'))}$",
                     result.stdout, re.M), result.stdout


def test_the_gguf_file_is_readable_by_the_gguf_package(exported_run):
    from farense_guide.steps.export import gguf_tensor_name

    path = exported_run / "export" / "f-f16.gguf"
    reader, fields = gguf_fields(path)
    config = json.loads((exported_run / "fused" / "config.json").read_text())
    assert fields["general.architecture"].contents() == "llama"
    assert fields["llama.block_count"].contents() == config["num_hidden_layers"]
    assert fields["llama.embedding_length"].contents() == config["hidden_size"]
    assert fields["llama.attention.head_count"].contents() == config["num_attention_heads"]
    assert fields["llama.attention.head_count_kv"].contents() == config["num_key_value_heads"]
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokenizer = json.loads((exported_run / "fused" / "tokenizer.json").read_text())
    assert len(fields["tokenizer.ggml.merges"].data) == len(tokenizer["model"]["merges"])
    assert fields["tokenizer.ggml.eos_token_id"].contents() == config["eos_token_id"]
    assert "<|im_start|>" in fields["tokenizer.chat_template"].contents()

    fused = mx.load(str(exported_run / "fused" / "model.safetensors"))
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {gguf_tensor_name(name) for name in fused}
    for name, value in fused.items():
        tensor = tensors[gguf_tensor_name(name)]
        assert tuple(int(d) for d in reversed(tensor.shape)) == value.shape  # GGUF lists dimensions innermost first
        assert tensor.tensor_type.name == ("F32" if value.ndim == 1 else "F16")

    loaded = mx.load(str(path))  # and MLX reads the same weights back
    for name, value in fused.items():
        dtype = mx.float32 if value.ndim == 1 else mx.float16
        assert mx.array_equal(loaded[gguf_tensor_name(name)], value.astype(dtype)).item(), name


def test_the_exported_vocabulary_is_the_embedded_smollm2_gguf_one(exported_run):
    from farense_guide.models import embedded_gguf

    _, ours = gguf_fields(exported_run / "export" / "f-f16.gguf")
    _, original = gguf_fields(embedded_gguf()[0])
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
        assert ours[key].contents() == original[key].contents(), key


def modelfile_parts(text):
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.S | re.M).group(1)
    system = re.search(r'^SYSTEM """(.*?)"""$', text, re.S | re.M).group(1)
    return template, system


def fill(template, system, prompt, response):
    return template.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt).replace("{{ .Response }}", response)


def test_the_modelfile_builds_the_text_the_model_was_trained_on(exported_run):
    from transformers import AutoTokenizer

    from farense_guide.chat_template import render
    from farense_guide.data.records import read_jsonl

    text = (exported_run / "export" / "Modelfile").read_text()
    assert text.splitlines()[1] == "FROM ./f-f16.gguf"
    assert 'PARAMETER stop "<|im_end|>"' in text
    template, system = modelfile_parts(text)
    record = next(r for r in read_jsonl(Path("data/train.jsonl")) if len(r["messages"]) == 3)  # one question, one answer
    assert system == record["messages"][0]["content"]
    tokenizer = AutoTokenizer.from_pretrained(str(exported_run / "fused"))
    question, answer = record["messages"][1]["content"], record["messages"][2]["content"]
    assert fill(template, system, question, answer) == render(tokenizer, record["messages"])


def test_the_ollama_template_folds_the_system_prompt_for_a_mistral_template():
    from transformers import AutoTokenizer

    from farense_guide.chat_template import render
    from farense_guide.steps.export import ollama_template
    from farense_guide.models import tiny_model

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model()))
    tokenizer.chat_template = MISTRAL_TEMPLATE
    template, stop = ollama_template(tokenizer)
    # tiny's tokenizer does not add BOS when encoding, so the template keeps the BOS that the Jinja template writes
    assert template == f"{tokenizer.bos_token}[INST] {{{{ .System }}}}\n\n{{{{ .Prompt }}}} [/INST]{{{{ .Response }}}}{tokenizer.eos_token}"
    assert stop == tokenizer.eos_token
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "P"}, {"role": "assistant", "content": "R"}]
    assert fill(template, "S", "P", "R") == render(tokenizer, messages)


def test_a_hugging_face_layout_model_exports_with_permuted_rotary_weights(tmp_path):
    """A rope_traditional=False model (the Hugging Face layout): GGUF -> our importer (llama.cpp's layout) gives the same logits."""
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.models import llama

    from farense_guide.steps.export import write_gguf
    from farense_guide.gguf_import import convert_gguf
    from farense_guide.models import copy_tokenizer_files, tiny_model
    from farense_guide.tiny import TINY_SHAPE

    source = tiny_model()
    config = {**TINY_SHAPE, "rope_traditional": False, **{k: json.loads((source / "config.json").read_text())[k]
                                                          for k in ("vocab_size", "bos_token_id", "eos_token_id")}}
    mx.random.seed(3)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    hf = tmp_path / "hf"
    hf.mkdir()
    mx.save_safetensors(str(hf / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (hf / "config.json").write_text(json.dumps(config))
    copy_tokenizer_files(source, hf)

    write_gguf(hf, tmp_path / "m.gguf", "hf")
    convert_gguf(tmp_path / "m.gguf", tmp_path / "back")
    original, _ = load(str(hf))
    back, _ = load(str(tmp_path / "back"))
    tokens = mx.array([[1, 400, 2000, 37, 9000, 12, 5]])
    assert np.allclose(np.array(original(tokens)), np.array(back(tokens)), atol=2e-2)
    shutil.rmtree(tmp_path / "back")


@pytest.fixture
def served_fused_model(fused_run):
    """mlx_lm.server on 127.0.0.1, on a free port, serving the fused tiny model; stopped after the test."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mlx_lm", "server", "--model", str(fused_run / "fused"),
                               "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.5)
        else:
            pytest.fail("mlx_lm.server did not answer /health in 2 minutes")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_mlx_lm_server_answers_an_openai_client_streamed_and_not(served_fused_model, fused_run):
    from mlx_lm import load
    from openai import OpenAI

    from farense_guide.data.records import FARENSE_SYSTEM_PROMPT
    from farense_guide.inference import stream_answer

    messages = [{"role": "system", "content": FARENSE_SYSTEM_PROMPT}, {"role": "user", "content": "Quando foi fundado o Farense?"}]
    client = OpenAI(base_url=served_fused_model, api_key="sem-chave")
    reply = client.chat.completions.create(model="default_model", messages=messages, max_tokens=12, temperature=0)
    text = reply.choices[0].message.content
    assert text and reply.usage.completion_tokens > 0 and reply.choices[0].finish_reason in ("length", "stop")

    chunks = client.chat.completions.create(model="default_model", messages=messages, max_tokens=12, temperature=0, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert len([p for p in pieces if p]) > 1  # really streamed, piece by piece
    assert "".join(pieces) == text

    model, tokenizer = load(str(fused_run / "fused"))
    assert stream_answer(model, tokenizer, messages, max_tokens=12) == text  # the same greedy answer as farense-guide chat
