"""Each model's own chat template; the system prompt folded into the first user turn where the template has no system role."""

import json
import shutil

import pytest
from conftest import ROOT, run_cli
from jinja2.exceptions import TemplateError

from farense_guide.chat_template import accepts_system, fold_system, for_template, records_for_template, render
from farense_guide.data.records import FARENSE_SYSTEM_PROMPT
from farense_guide.errors import FarenseError

# Mistral-7B-Instruct-v0.1's template, as its tokenizer_config.json ships it.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
# A template that renders user and assistant turns and drops anything else without an error.
DROPPING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}<u>{{ message['content'] }}</u>"
    "{% elif message['role'] == 'assistant' %}<a>{{ message['content'] }}</a>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<a>{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": FARENSE_SYSTEM_PROMPT},
    {"role": "user", "content": "Quando foi fundado o Farense?"},
    {"role": "assistant", "content": "Em 1910."},
    {"role": "user", "content": "E o estádio?"},
]


@pytest.fixture(scope="module")
def tiny_folder():
    from farense_guide.models import tiny_model

    return tiny_model()


def tokenizer_with(folder, template):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def test_smollm2_template_keeps_the_system_message(tiny_folder):
    tokenizer = tokenizer_with(tiny_folder, None)  # the tiny model carries SmolLM2's tokenizer and template
    assert accepts_system(tokenizer)
    assert for_template(tokenizer, CONVERSATION) is CONVERSATION
    assert f"<|im_start|>system\n{FARENSE_SYSTEM_PROMPT}<|im_end|>" in render(tokenizer, CONVERSATION)


def test_a_mistral_instruct_template_rejects_system_and_gets_it_folded(tiny_folder):
    tokenizer = tokenizer_with(tiny_folder, MISTRAL_TEMPLATE)
    with pytest.raises(TemplateError, match="Conversation roles must alternate"):
        tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert not accepts_system(tokenizer)
    text = render(tokenizer, CONVERSATION, add_generation_prompt=True)
    assert text.startswith(f"{tokenizer.bos_token}[INST] {FARENSE_SYSTEM_PROMPT}\n\nQuando foi fundado o Farense? [/INST]Em 1910.")
    assert text.endswith("[INST] E o estádio? [/INST]")
    assert text.count(FARENSE_SYSTEM_PROMPT) == 1


def test_a_template_that_drops_system_silently_is_caught(tiny_folder):
    tokenizer = tokenizer_with(tiny_folder, DROPPING_TEMPLATE)
    assert FARENSE_SYSTEM_PROMPT not in tokenizer.apply_chat_template(CONVERSATION, tokenize=False)  # the trap
    assert not accepts_system(tokenizer)
    assert render(tokenizer, CONVERSATION).startswith(f"<u>{FARENSE_SYSTEM_PROMPT}\n\nQuando foi fundado o Farense?</u>")


def test_folding_touches_only_the_system_message_and_the_first_user_turn():
    folded = fold_system(CONVERSATION)
    assert [m["role"] for m in folded] == ["user", "assistant", "user"]
    assert folded[0]["content"] == f"{FARENSE_SYSTEM_PROMPT}\n\nQuando foi fundado o Farense?"
    assert folded[1:] == CONVERSATION[2:]
    assert fold_system(CONVERSATION[1:]) == CONVERSATION[1:]
    assert fold_system([CONVERSATION[0]]) == [{"role": "user", "content": FARENSE_SYSTEM_PROMPT}]
    assert CONVERSATION[1]["content"] == "Quando foi fundado o Farense?"  # the input is not changed in place


def test_the_trainer_sees_the_system_prompt_in_the_prompt_and_the_answer_after_it(tiny_folder):
    from mlx_lm.tuner.datasets import ChatDataset

    tokenizer = tokenizer_with(tiny_folder, MISTRAL_TEMPLATE)
    record = {"messages": CONVERSATION[:3]}
    dataset = ChatDataset(records_for_template(tokenizer, [record]), tokenizer, mask_prompt=True)
    tokens, offset = dataset.process(dataset[0])
    assert FARENSE_SYSTEM_PROMPT in tokenizer.decode(tokens[:offset])
    assert tokenizer.decode(tokens[offset:]).startswith("Em 1910.")


def test_loss_every_turn_trains_on_each_answer_with_the_earlier_ones_in_the_prompt(tiny_folder):
    from farense_guide.config import apply_overrides, load_profile
    from farense_guide.steps.train import make_datasets

    tokenizer = tokenizer_with(tiny_folder, MISTRAL_TEMPLATE)
    two_answers = {"messages": CONVERSATION + [{"role": "assistant", "content": "O Estádio de São Luís."}]}
    records = {"train": [two_answers], "valid": [two_answers]}
    last_only = make_datasets(load_profile("tiny"), tokenizer, records)
    every = make_datasets(apply_overrides(load_profile("tiny"), ["loss_every_turn=true"]), tokenizer, records)

    assert (len(last_only[0]), len(every[0]), len(every[1])) == (1, 2, 1)  # validation stays on the last answer
    answers = [tokenizer.decode(tokens[offset:]) for tokens, offset in (every[0][i] for i in range(2))]
    assert answers[0].startswith("Em 1910.") and "Estádio" not in answers[0]
    assert answers[1].startswith("O Estádio de São Luís.") and "1910" not in answers[1]
    tokens, offset = every[0][1]
    assert "Em 1910." in tokenizer.decode(tokens[:offset])
    assert list(every[0][1][0]) == list(last_only[0][0][0])
    with pytest.raises(FarenseError, match="loss_every_turn precisa de mask_prompt"):
        apply_overrides(load_profile("tiny"), ["loss_every_turn=true", "mask_prompt=false"])


@pytest.fixture
def mistral_style_model(tmp_path, tiny_folder):
    """The tiny model with Mistral-Instruct's template instead of SmolLM2's."""
    folder = tmp_path / "tiny-mistral-template"
    shutil.copytree(tiny_folder, folder)
    (folder / "chat_template.jinja").write_text(MISTRAL_TEMPLATE, encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_data_validation_training_evaluation_and_chat_run_with_a_mistral_template(tmp_path, mistral_style_model, capsys):
    from farense_guide.data.records import read_jsonl
    from farense_guide.steps.chat import chat
    from farense_guide.steps.evaluate import evaluate_run

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        lines = (ROOT / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:4]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    profile = tmp_path / "mistral-template.yaml"
    profile.write_text(f"model: {mistral_style_model}\nquantized: false\nlora: {{rank: 4, num_layers: 2}}\nbatch_size: 2\n"
                       f"epochs: 1\nsteps_per_eval: 2\nsteps_per_report: 1\nearly_stopping_patience: 0\n", encoding="utf-8")

    validated = run_cli("data", "validate", str(data), "--profile", str(profile))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    trained = run_cli("train", "--profile", str(profile), "--data", str(data), "--runs-dir", str(tmp_path), "--run-name", "m")
    assert trained.returncode == 0, trained.stderr
    evaluate_run(tmp_path / "m", limit=2, max_tokens=4)
    capsys.readouterr()  # the evaluation's progress
    # chat folds the system prompt as evaluate did: the same answers to the same questions
    predictions = [json.loads(line) for line in (tmp_path / "m" / "evaluation" / "predictions.jsonl").read_text().splitlines()]
    for record, prediction in zip(read_jsonl(data / "test.jsonl"), predictions):
        system, question = (m["content"] for m in record["messages"][:2])
        chat("smollm2", tmp_path / "m", question, system, 4, compare_base=False)
        assert capsys.readouterr().out.strip() == prediction["tuned_answer"], question
