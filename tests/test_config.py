"""The training profile: float-aware YAML, overrides, and refusals that name the key."""

from __future__ import annotations

import pytest

from farense_guide.config import apply_overrides, available_profiles, describe_keys, load_profile, profile_from_dict
from farense_guide.errors import FarenseError


def write(tmp_path, text: str):
    path = tmp_path / "perfil.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_yaml_learning_rate_in_e_notation_loads_as_a_float(tmp_path):
    profile = load_profile(write(tmp_path, "model: tiny\nlearning_rate: 1e-4\nlora: {scale: 20, dropout: 5e-2}\n"))
    assert profile.learning_rate == 0.0001 and isinstance(profile.learning_rate, float)
    assert profile.lora.scale == 20.0 and isinstance(profile.lora.scale, float)
    assert profile.lora.dropout == 0.05


def test_the_float_loader_leaves_plain_yaml_alone(tmp_path):
    import yaml

    profile = load_profile(write(tmp_path, "model: tiny\nseed: 7\ndata: '1e-4'\n"))
    assert profile.seed == 7 and profile.data == "1e-4"
    assert yaml.safe_load("x: 1e-4") == {"x": "1e-4"}  # PyYAML's own loader is not changed for others


def test_overrides_read_values_as_yaml():
    profile = apply_overrides(load_profile("tiny"), ["learning_rate=3e-4", "lora.rank=16", "max_steps=null", "grad_checkpoint=true"])
    assert (profile.learning_rate, profile.lora.rank, profile.max_steps, profile.grad_checkpoint) == (3e-4, 16, None, True)


@pytest.mark.parametrize("change, words", [
    ("learning_rate=abc", "learning_rate tem de ser um número"),
    ("seed=abc", "seed tem de ser um número inteiro"),
    ("lora=5", "lora tem de ter chaves"),
    ("lora.rnak=4", "chave desconhecida no perfil: lora.rnak"),
    ("quantized=3", "quantized tem de ser verdadeiro ou falso"),
    ("batch_size=0", "batch_size tem de ser um inteiro maior ou igual a 1"),
])
def test_a_bad_override_is_refused_naming_the_key(change, words):
    with pytest.raises(FarenseError, match=words):
        apply_overrides(load_profile("tiny"), [change])


def test_unknown_keys_in_a_yaml_file_are_named(tmp_path):
    with pytest.raises(FarenseError, match="chaves desconhecidas: rnak"):
        load_profile(write(tmp_path, "model: tiny\nlora: {rnak: 4}\n"))


def test_every_profile_round_trips_through_its_dict():
    for name in available_profiles():
        profile = load_profile(name)
        assert profile_from_dict(profile.to_dict()) == profile


def test_every_key_has_help_text():
    keys = dict(describe_keys())
    assert {"lora.rank", "learning_rate", "eval_limit"} <= set(keys)
    assert all(text.strip() for text in keys.values())
