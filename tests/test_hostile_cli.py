"""Hostile input to the CLI (issue 20): wrong types in a profile or --set, empty, control-laden or huge chat questions,
an adapter of another base model, and data text that must stay text in Markdown tables and in the PDF.

Every refusal is a pt-PT message naming what is wrong, a non-zero exit, no traceback, and no input file touched."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

HOSTILE = "<b>x</b> | a\nb & c"
HOSTILE_SHOWN = "<b>x</b> | a b & c"  # as a table cell shows it: the line break becomes a space


def snapshot(*paths: Path) -> dict[Path, bytes]:
    files = [p for path in paths for p in ([path] if path.is_file() else sorted(path.rglob("*")))]
    return {file: file.read_bytes() for file in files if file.is_file()}


def refused(result, *words: str) -> str:
    """The error line of a refused command, checked: exit 2, `erro:` with every word, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("erro: "), result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two training steps of the tiny model on a few Farense examples: a run folder with its adapter."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    for split, count in (("train", 4), ("valid", 2), ("test", 2)):
        lines = (ROOT / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    trained = run_cli("train", "--profile", "tiny", "--runs-dir", str(root), "--run-name", "t", "--data", str(data),
                      "--set", "max_steps=2", "--set", "steps_per_eval=2", "--set", "save_every=2", "--set", "val_batches=1")
    assert trained.returncode == 0, trained.stderr
    return root / "t"


# ── profile values (config.py): every command that reads a profile refuses them ─────────────────────────


@pytest.mark.parametrize("change, words", [
    ("seed=abc", ["seed", "número inteiro", "'abc'"]),
    ("lora=5", ["lora tem de ter chaves", "5"]),
    ("lora.rank=true", ["lora.rank", "número inteiro"]),
    ("lora.dropout=2", ["lora.dropout", "entre 0 e 1"]),
    ("lr_schedule=foo", ["lr_schedule", "cosine ou constant", "'foo'"]),
    ("model_shape=5", ["model_shape"]),
    ("learning_rate=.nan", ["learning_rate", "finito"]),
])
def test_a_bad_set_value_is_refused_naming_the_key(change, words, tmp_path):
    result = run_cli("train", "--profile", "tiny", "--set", change, "--runs-dir", str(tmp_path))
    refused(result, *words)
    assert not any(tmp_path.iterdir())  # no run folder started


@pytest.mark.parametrize("text, words", [
    ("model: tiny\nlora: {rnak: 4}\n", ["em lora: chaves desconhecidas: rnak"]),
    ("model: tiny\nlora: 5\n", ["lora tem de ter chaves"]),
    ("model: tiny\nseed: abc\n", ["seed tem de ser um número inteiro", "'abc'"]),
    ("model: tiny\nlora: {rank: [1]}\n", ["lora.rank tem de ser um número inteiro"]),
])
def test_a_bad_profile_file_is_refused_naming_the_file_and_the_key(text, words, tmp_path):
    profile = tmp_path / "hostil.yaml"
    profile.write_text(text, encoding="utf-8")
    before = snapshot(profile)
    stderr = refused(run_cli("train", "--profile", str(profile), "--runs-dir", str(tmp_path / "runs")), *words)
    assert str(profile) in stderr
    assert snapshot(profile) == before and not (tmp_path / "runs").exists()


def test_a_profile_that_is_not_utf8_is_refused_naming_the_file(tmp_path):
    profile = tmp_path / "binario.yaml"
    profile.write_bytes(b"model: tiny\n\xff\xfe: 1\n")
    refused(run_cli("data", "validate", str(ROOT / "data"), "--profile", str(profile)), str(profile), "UTF-8")


# ── chat questions (steps/chat.py) ──────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("args", [[""], ["   \t  "], ["\x01\x02\x1b\x7f"], ["--prompt", ""]])
def test_chat_refuses_an_empty_question_instead_of_opening_the_conversation(args):
    result = run_cli("chat", "--model", "tiny", *args, input="Olá\nsair\n", timeout=60)
    refused(result, "a pergunta está vazia")
    assert "Conversa com o modelo" not in result.stdout


def test_control_characters_go_and_newline_and_tab_stay():
    from farense_guide.steps.chat import clean_question

    assert clean_question("a\x00b\x1b[31m\tc\nd\x85e\x7f\udcff") == "ab[31m\tc\nde"


def test_chat_refuses_a_question_longer_than_the_context_before_generating():
    result = run_cli("chat", "--model", "tiny", "palavra " * 12_800, timeout=150)  # 100 KB
    stderr = refused(result, "não cabe no contexto do modelo", "2048 tokens de contexto")
    assert int(re.search(r"o pedido tem (\d+) tokens", stderr).group(1)) > 2048
    assert result.stdout == ""  # nothing generated


def test_the_conversation_says_why_a_line_is_refused_and_goes_on():
    lines = ["\x01\x02", "", "palavra " * 3000, "Olá", "sair"]
    result = run_cli("chat", "--model", "tiny", "--max-tokens", "3", input="\n".join(lines) + "\n", timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("erro: ") == 2, result.stderr
    assert "a pergunta está vazia" in result.stderr and "não cabe no contexto do modelo" in result.stderr
    assert result.stdout.count("modelo> ") == 1  # only «Olá» was answered


def test_chat_refuses_max_tokens_below_one():
    refused(run_cli("chat", "--model", "tiny", "Olá", "--max-tokens", "-1", timeout=60), "--max-tokens", "-1")


# ── adapters of another base model ──────────────────────────────────────────────────────────────────────


def lone_adapter(run: Path, folder: Path, **config_changes) -> Path:
    """A copy of the run's adapter without its run.json, with adapter_config.json changed."""
    shutil.copytree(run / "adapters", folder, ignore=shutil.ignore_patterns("last", "epoch-*"))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **config_changes}))
    return folder


def test_an_explicit_model_other_than_the_adapters_is_refused_before_loading(tiny_run):
    before = snapshot(tiny_run / "adapters")
    stderr = refused(run_cli("chat", "--model", "smollm2", "--adapter", str(tiny_run), "Olá", timeout=60),
                     str(tiny_run / "adapters"), "treinado sobre o modelo tiny, não sobre smollm2")
    assert "sem --model" in stderr
    assert snapshot(tiny_run / "adapters") == before


def test_a_tiny_adapter_on_smollm2_is_refused_naming_the_adapter_and_both_models(tiny_run, tmp_path):
    adapter = lone_adapter(tiny_run, tmp_path / "adaptador", model="smollm2")  # a tiny adapter that says smollm2
    before = snapshot(adapter)
    refused(run_cli("chat", "--adapter", str(adapter), "Olá", timeout=120),
            f"o adaptador {adapter} não serve no modelo smollm2", "camadas LoRA não correspondem")
    assert snapshot(adapter) == before


def test_an_adapter_with_another_models_sizes_is_refused_on_tiny(tiny_run, tmp_path):
    """Tensors named as the tiny model's, with SmolLM2's width (576) instead of 64: a shape mismatch, not a name one."""
    import mlx.core as mx

    adapter = lone_adapter(tiny_run, tmp_path / "largo")
    weights = mx.load(str(adapter / "adapters.safetensors"))
    wide = {name: mx.zeros((576, value.shape[1]) if name.endswith("lora_a") else (value.shape[0], 576)) for name, value in weights.items()}
    mx.save_safetensors(str(adapter / "adapters.safetensors"), wide)
    before = snapshot(adapter)
    refused(run_cli("chat", "--adapter", str(adapter), "Olá", timeout=120),
            f"o adaptador {adapter} não serve no modelo tiny", "diz que foi treinado sobre tiny")
    assert snapshot(adapter) == before


@pytest.mark.parametrize("damage, words", [
    (lambda folder: (folder / "adapter_config.json").write_text("[1, 2]"), ["adapter_config.json", "num_layers"]),
    (lambda folder: (folder / "adapters.safetensors").write_bytes(b"lixo"), ["adapters.safetensors", "safetensors válido"]),
])
def test_a_damaged_adapter_is_refused_naming_the_file(tiny_run, tmp_path, damage, words):
    adapter = lone_adapter(tiny_run, tmp_path / "estragado")
    damage(adapter)
    refused(run_cli("chat", "--adapter", str(adapter), "Olá", timeout=60), *words)


# ── data and run text in Markdown tables and in the PDF ─────────────────────────────────────────────────


def training_table_named(run: Path, name: str) -> str:
    """The run's training table, with `name` as its profile's name and model."""
    from farense_guide.report import training_table
    from farense_guide.runs import RunInfo

    data = json.loads((run / "run.json").read_text())
    data["profile"].update(name=name, model=name)
    return training_table(RunInfo.from_dict(data), None)


def hostile_training_table(run: Path) -> str:
    return training_table_named(run, HOSTILE)


def test_a_report_table_keeps_hostile_text_in_one_cell(tiny_run):
    import markdown
    from markdown_it import MarkdownIt

    table = hostile_training_table(tiny_run)
    row = next(line for line in table.splitlines() if line.startswith("| perfil |"))
    assert len(table.splitlines()) == len(training_table_named(tiny_run, "tiny").splitlines())
    tokens = MarkdownIt("commonmark").enable("table").parse(row.join(["| | |\n| --- | --- |\n", "\n"]))
    cells = ["".join(child.content for child in token.children) for token in tokens if token.type == "inline"]  # the text shown
    assert cells[2:] == ["perfil", f"{HOSTILE_SHOWN} ({HOSTILE_SHOWN})"]
    html = markdown.markdown(table, extensions=["tables"])  # what the site (Python-Markdown) makes of it
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count("<tr>") == table.count("\n") - 1  # one HTML row per Markdown row (the separator line is none)


def test_fragment_code_spans_fall_back_to_escaped_text():
    from farense_guide.book.fragments import code

    assert code("runs/reference") == "`runs/reference`"
    assert code("a|b`c\nd") == "a\\|b\\`c d"


def test_a_pdf_shows_hostile_text_literally(tiny_run, tmp_path):
    from markdown_it import MarkdownIt
    from markdown_it.tree import SyntaxTreeNode
    from pypdf import PdfReader
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate

    from farense_guide.book.pdf import register_fonts
    from farense_guide.book.pdf_flowables import Renderer
    from farense_guide.data.output import markdown_cell

    text = f"# Relatório\n\nUma resposta: {markdown_cell(HOSTILE)}\n\n{hostile_training_table(tiny_run)}"
    tree = SyntaxTreeNode(MarkdownIt("commonmark").enable("table").parse(text))
    register_fonts()
    output = tmp_path / "hostil.pdf"
    document = SimpleDocTemplate(str(output), pagesize=A4)
    document.build(Renderer(document.width, document.height, tmp_path, 0).render(tree))
    shown = " ".join(" ".join(page.extract_text() for page in PdfReader(output).pages).split())
    assert f"Uma resposta: {HOSTILE_SHOWN}" in shown
    assert f"{HOSTILE_SHOWN} ({HOSTILE_SHOWN})" in shown
