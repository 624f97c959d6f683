"""The memory estimator and the preflight verdict built on it."""


from dataclasses import replace

import pytest

from farense_guide.config import available_profiles, load_profile
from farense_guide.errors import FarenseError
from farense_guide.memory import GB, Fit, ModelShape, estimate_for, estimate_memory, judge_fit, memory_budget, require_fit
from farense_guide.steps.preflight import Status, check_memory_estimate

MISTRAL = ModelShape.from_config(load_profile("m1-16gb").model_shape)


def test_7b_shape_has_7b_parameters():
    assert 7.1e9 < MISTRAL.parameter_count() < 7.4e9


def test_estimate_matches_a_peak_measured_on_mlx():
    # Measured on MLX's CUDA backend (issue 4): Mistral-7B shape, 4 bits, rank 8 on 16 layers,
    # batch 2 x 512, fp16, no checkpointing: 14.0 GB. The constants were fitted on SmolLM2 on CPU.
    estimate = estimate_memory(
        MISTRAL, weight_bits=4, compute_bytes=2, lora_rank=8, lora_layers=16,
        batch_size=2, seq_length=512, grad_checkpoint=False,
    )
    assert estimate.total == pytest.approx(14.0 * GB, rel=0.15)


def test_checkpointing_batch_and_length_lower_the_estimate():
    def total(**changes):
        settings = dict(weight_bits=4, compute_bytes=2, lora_rank=8, lora_layers=16,
                        batch_size=2, seq_length=512, grad_checkpoint=False)
        return estimate_memory(MISTRAL, **{**settings, **changes}).total

    base = total()
    assert total(grad_checkpoint=True) < base / 2
    assert total(batch_size=1) < base
    assert total(seq_length=256) < base
    assert total(weight_bits=None, compute_bytes=4) > 2 * base  # float32 7B does not fit anywhere here


def test_m1_profile_fits_a_16gb_m1_gpu_budget():
    budget = 10.7 * GB  # roughly what macOS lets the GPU use on a 16 GB M1
    check, details = check_memory_estimate(load_profile("m1-16gb"), MISTRAL, True, budget)
    assert check.status == "ok" and details["verdict"] == "cabe"
    assert "QLoRA" in details["precision"]


def test_a_profile_that_does_not_fit_is_blocking_and_says_what_to_change():
    profile = replace(load_profile("m1-16gb"), grad_checkpoint=False)
    check, details = check_memory_estimate(profile, MISTRAL, True, 10.7 * GB)
    assert details["verdict"] == "não cabe" and check.status == "erro"
    assert "grad_checkpoint: true" in check.hint


def test_verdicts_and_their_words():
    assert judge_fit(8 * GB, 10 * GB) is Fit.FITS
    assert judge_fit(9.5 * GB, 10 * GB) is Fit.TIGHT
    assert judge_fit(11 * GB, 10 * GB) is Fit.DOES_NOT_FIT
    assert [fit.label for fit in Fit] == ["cabe", "à justa", "não cabe"]


def test_estimate_rows_are_keyed_by_id_and_labelled_in_portuguese():
    estimate, _ = estimate_for(load_profile("m1-16gb"), MISTRAL, True)
    rows = {row.key: row for row in estimate.rows()}
    assert list(rows) == ["weights", "lora", "activations", "logits", "total"]
    assert rows["total"].size == estimate.total and rows["total"].label == "total estimado"
    assert rows["weights"].label == "pesos do modelo base"


def test_check_statuses_are_the_words_of_the_table_and_the_json():
    assert [status.value for status in Status] == ["ok", "info", "aviso", "erro"]


def test_the_trainer_refuses_a_profile_that_does_not_fit_and_warns_when_tight(monkeypatch, capsys):
    import farense_guide.memory as memory

    profile = replace(load_profile("m1-16gb"), grad_checkpoint=False)
    monkeypatch.setattr(memory, "device_info", lambda: {"max_recommended_working_set_size": int(10.7 * GB)})
    with pytest.raises(FarenseError, match="o perfil não cabe na memória") as refused:
        require_fit(profile, MISTRAL, "gpu", quantized=True)
    assert "grad_checkpoint: true" in refused.value.hint

    total = estimate_for(load_profile("m1-16gb"), MISTRAL, True)[0].total
    monkeypatch.setattr(memory, "device_info", lambda: {"max_recommended_working_set_size": int(total / 0.95)})
    details = require_fit(load_profile("m1-16gb"), MISTRAL, "gpu", quantized=True)
    assert details["verdict"] == "à justa" and "pesos do modelo base" in details["bytes"]
    assert "aviso: memória à justa" in capsys.readouterr().err


def test_profiles_load():
    assert {"smollm2", "tiny", "m1-16gb"} <= set(available_profiles())
    assert load_profile().name == "smollm2" and load_profile().epochs == 3
    assert load_profile("tiny").model == "tiny"


def test_budget_is_the_gpu_limit_on_metal_and_free_ram_on_the_cpu():
    metal = {"max_recommended_working_set_size": int(10.7 * GB)}
    assert memory_budget("gpu", metal, available=int(3 * GB)) == int(10.7 * GB)  # a busy Mac is not refused
    assert memory_budget("cpu", {}, available=int(20 * GB)) == int(20 * GB)
    assert memory_budget("gpu", {"memory_size": int(80 * GB)}, available=int(20 * GB)) == int(80 * GB)  # GPU memory, not RAM
    assert memory_budget("gpu", {}, available=int(20 * GB)) == int(20 * GB)  # nothing reported: RAM


def test_preflight_cites_the_measured_peak_of_the_m1_profile_beside_its_estimate():
    """runs/m1-shape-cuda is the m1-16gb profile run on a model of its shape (tools/gpu_m1_shape.sh)."""
    import dataclasses
    import json

    from farense_guide.config import load_profile
    from farense_guide.steps.preflight import MEASURED_PROFILES, measured_note

    profile = load_profile("m1-16gb")
    record = json.loads(MEASURED_PROFILES["m1-16gb"].read_text())
    checkpointed = next(row for row in record["runs"] if row["grad_checkpoint"])
    note = measured_note(profile, quantized=True)
    assert f"{checkpointed['peak_gb']:.1f} GB" in note and "runs/m1-shape-cuda" in note
    assert 0.85 <= checkpointed["estimate_over_peak"] <= 1.15
    without = measured_note(dataclasses.replace(profile, grad_checkpoint=False), quantized=True)
    assert without != note and without.startswith("; medido")
    assert measured_note(profile, quantized=False) == "" and measured_note(load_profile("smollm2"), quantized=True) == ""
