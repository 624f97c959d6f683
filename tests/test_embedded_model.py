"""The converted SmolLM2 behaves like SmolLM2: a wrong conversion breaks these."""

import random

import mlx.core as mx
import pytest
from mlx_lm import generate


def ask(model, tokenizer, question, max_tokens=30):
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False)
    return generate(model, tokenizer, prompt=prompt, max_tokens=max_tokens)


def mean_log_likelihood(model, tokens):
    tokens = mx.array([tokens])
    logits = model(tokens[:, :-1]).astype(mx.float32)
    log_probs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    picked = mx.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)
    return picked.mean().item()


def test_greedy_answer_knows_paris(smollm2):
    model, tokenizer = smollm2
    assert "Paris" in ask(model, tokenizer, "What is the capital of France?")


def test_english_sentence_beats_its_shuffled_tokens(smollm2):
    model, tokenizer = smollm2
    sentence = "The quick brown fox jumps over the lazy dog, and then it runs back into the forest to sleep."
    tokens = tokenizer.encode(sentence)
    shuffled = tokens[:]
    random.Random(0).shuffle(shuffled)
    real, scrambled = mean_log_likelihood(model, tokens), mean_log_likelihood(model, shuffled)
    assert real > scrambled + 2.0, (real, scrambled)


@pytest.mark.parametrize(
    "text",
    [
        "O Farense é a equipa de Faro; os adeptos festejaram o golo no ecrã.",
        "Ação, coração, pé, avô, à, ç, ã, õ, é, ê, í, ó, ú — 1910 e 2024.",
    ],
)
def test_portuguese_round_trips_through_the_tokenizer(smollm2, text):
    _, tokenizer = smollm2
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_digits_are_split_one_by_one(smollm2):
    _, tokenizer = smollm2
    assert len(tokenizer.encode("1910")) == 4


def test_chat_template_wraps_roles_in_im_start(smollm2):
    _, tokenizer = smollm2
    messages = [{"role": "system", "content": "És o assistente do Farense."}, {"role": "user", "content": "Olá"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nÉs o assistente do Farense.<|im_end|>\n"
        "<|im_start|>user\nOlá<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.encode("<|im_start|>") == [tokenizer.convert_tokens_to_ids("<|im_start|>")]
    assert tokenizer.eos_token == "<|im_end|>"


def test_weights_stay_4bit(smollm2_path):
    import json

    config = json.loads((smollm2_path / "config.json").read_text())
    assert config["quantization"] == {"group_size": 32, "bits": 4}
    assert config["rope_traditional"] is True and config["tie_word_embeddings"] is True
    weights = mx.load(str(smollm2_path / "model.safetensors"))
    assert weights["model.layers.0.self_attn.q_proj.weight"].dtype == mx.uint32
    assert "model.layers.29.mlp.down_proj.scales" in weights
