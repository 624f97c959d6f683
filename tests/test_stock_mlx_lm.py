"""The fine-tune with stock mlx-lm only (chapter 7): the recipe file says what the smollm2 profile says, mlx-lm's
defaults differ from the profile where the chapter says they do, and an adapter written by the real mlx_lm.lora
trainer is evaluated by `farense-guide evaluate` like any run."""

import json
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, run_cli

from farense_guide import blas
from farense_guide.config import load_profile
from farense_guide.runs import RunFolder

RECIPE = ROOT / "snippets" / "07_treinar_mlx_lm_puro.yaml"


def recipe() -> dict:
    from mlx_lm.lora import yaml_loader

    return yaml.load(RECIPE.read_text(encoding="utf-8"), Loader=yaml_loader)  # read as mlx_lm.lora reads it


def test_the_recipe_is_the_smollm2_profile_in_mlx_lm_keys():
    import mlx.core as mx
    from mlx_lm.tuner.utils import build_schedule

    from farense_guide.steps.train import schedule

    profile, stock = load_profile("smollm2"), recipe()
    train_examples = sum(1 for line in (ROOT / profile.data / "train.jsonl").open(encoding="utf-8") if line.strip())
    steps = profile.epochs * (train_examples // profile.batch_size)
    assert (stock["data"], stock["fine_tune_type"], stock["optimizer"], stock["iters"]) == (profile.data, "lora", "adam", steps)
    assert stock["num_layers"] == profile.lora.num_layers
    assert stock["lora_parameters"] == {"rank": profile.lora.rank, "scale": profile.lora.scale, "dropout": profile.lora.dropout}
    keys = {"batch_size": "batch_size", "grad_accumulation_steps": "grad_accumulation", "max_seq_length": "max_seq_length",
            "grad_checkpoint": "grad_checkpoint", "learning_rate": "learning_rate", "mask_prompt": "mask_prompt", "seed": "seed",
            "steps_per_report": "steps_per_report", "steps_per_eval": "steps_per_eval", "val_batches": "val_batches",
            "save_every": "save_every"}
    assert {key: stock[key] for key in keys} == {key: getattr(profile, name) for key, name in keys.items()}
    ours, theirs = schedule(profile, steps // profile.grad_accumulation), build_schedule(stock["lr_schedule"])
    for step in range(steps + 1):  # the same learning rate at every step
        assert theirs(mx.array(step)).item() == pytest.approx(ours(mx.array(step)).item(), rel=1e-6, abs=1e-12), step


def test_mlx_lm_defaults_differ_from_the_profile_where_the_chapter_says():
    from mlx_lm.lora import CONFIG_DEFAULTS as stock

    profile = load_profile("smollm2")
    assert stock["mask_prompt"] is False and profile.mask_prompt is True
    assert stock["learning_rate"] < profile.learning_rate
    assert stock["lr_schedule"] is None and profile.lr_schedule == "cosine" and profile.warmup_steps > 0
    assert stock["lora_parameters"]["dropout"] == 0 < profile.lora.dropout
    assert stock["max_seq_length"] > profile.max_seq_length and stock["val_batches"] > 0 and profile.val_batches == -1
    assert stock["steps_per_eval"] > profile.steps_per_eval and stock["save_every"] > profile.save_every
    assert (stock["lora_parameters"]["rank"], stock["lora_parameters"]["scale"], stock["num_layers"], stock["batch_size"],
            stock["seed"], stock["optimizer"]) == (profile.lora.rank, profile.lora.scale, profile.lora.num_layers,
                                                   profile.batch_size, profile.seed, "adam")


def test_an_adapter_of_the_stock_mlx_lm_trainer_is_evaluated_like_a_run(tmp_path):
    from farense_guide.models import tiny_model
    from farense_guide.steps.evaluate import stock_adapter_config

    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 8), ("valid", 6), ("test", 6)):
        lines = (ROOT / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base, run = tiny_model(), tmp_path / "runs" / "puro"
    # The recipe of the chapter, on the tiny model (two layers) and a few steps: the command line wins over the file.
    trained = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "--train", "-c", str(RECIPE), "--model", str(base),
                              "--data", str(data), "--adapter-path", str(run / "adapters"), "--num-layers", "2", "--iters", "4",
                              "--batch-size", "2", "--val-batches", "1"],
                             cwd=tmp_path, env=blas.blas_env(), capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert not (run / "run.json").exists() and stock_adapter_config(RunFolder(run)) is not None

    evaluated = run_cli("evaluate", str(run), "--max-tokens", "8", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "foi treinado pelo mlx_lm.lora" in evaluated.stderr
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert info["trained_by"] == "mlx_lm.lora" and info["mlx_lm"]["iters"] == 4 and info["iterations"]["total_steps"] == 4
    assert info["profile"]["mask_prompt"] is True and info["profile"]["lora"]["num_layers"] == 2
    assert info["backend"]["method"] == "LoRA" and info["backend"]["model_path"] == str(base)
    report = json.loads((run / "evaluation" / "evaluation_report.json").read_text(encoding="utf-8"))
    assert report["items"] == 6 and report["tuned"]["perplexity"] != report["base"]["perplexity"]  # the adapter was loaded
    assert (run / "evaluation" / "EVALUATION_REPORT.md").exists()
    # Now a run like any other: its base model for mlx_lm.generate is the one mlx_lm.lora trained on.
    model = run_cli("model", str(run), cwd=tmp_path)
    assert model.returncode == 0 and model.stdout.strip() == str(base), model.stderr


def test_a_folder_without_run_json_whose_adapter_is_ours_is_not_taken_for_mlx_lm(tmp_path):
    from farense_guide.steps.evaluate import stock_adapter_config
    from farense_guide.steps.train import adapter_config

    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "adapter_config.json").write_text(json.dumps(adapter_config(load_profile("tiny"))))
    assert stock_adapter_config(RunFolder(tmp_path)) is None
    failed = run_cli("evaluate", str(tmp_path))
    assert failed.returncode == 2 and "run.json: não existe" in failed.stderr, failed.stderr
