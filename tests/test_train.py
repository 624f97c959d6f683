"""Training on the tiny model with the real mlx-lm building blocks: learning, exact resume, crashes."""

import json
import os
import signal
import subprocess
import sys
import time

import mlx.core as mx
import pytest

from conftest import ROOT, run_cli
from farense_guide.config import apply_overrides, load_profile
from farense_guide.runs import RunFolder, RunStatus
from farense_guide.steps.train import TrainPlan
from farense_guide.steps.train import train as run_training
from farense_guide.commands import report_end

# Short runs: a handful of steps, validation on two batches.
SHORT = ["--profile", "tiny", "--set", "val_batches=2", "--set", "steps_per_report=1"]


def train(runs, name, *extra, env=None):
    """`farense-guide train`, in a subprocess: for what only the command shows (exit status, signals, kills, processes)."""
    return run_cli("train", *SHORT, "--runs-dir", str(runs), "--run-name", name, *extra, env=env)


@pytest.fixture
def train_here(monkeypatch):
    """The same short run of the tiny profile, in this process: (final RunInfo, RunFolder)."""
    monkeypatch.chdir(ROOT)  # the profile's data folder is relative, as for the command

    def run(runs, name, *changes, loss_fn=None):
        profile = apply_overrides(load_profile("tiny"), ["val_batches=2", "steps_per_report=1", *changes])
        folder = RunFolder(runs / name)
        return run_training(TrainPlan(profile, folder, command=["test"]), loss_fn=loss_fn), folder

    return run


def adapters(path):
    return mx.load(str(path / "adapters.safetensors"))


def assert_same_adapters(a, b, tolerance=1e-6):
    first, second = adapters(a), adapters(b)
    assert first.keys() == second.keys()
    for key in first:
        assert mx.allclose(first[key], second[key], atol=tolerance).item(), key


def losses(run):
    return [(m["type"], m["step"], m.get("train_loss", m.get("val_loss"))) for m in RunFolder(run).read_metrics()]


def test_tiny_training_lowers_validation_loss_and_mlx_lm_loads_the_adapter(tmp_path, train_here):
    from farense_guide.models import resolve_model

    final, _ = train_here(tmp_path, "learn", "max_steps=16", "steps_per_eval=8")
    assert final.status is RunStatus.COMPLETED
    run = tmp_path / "learn"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["steps_done"] == 16
    assert info["iterations"]["shortened"] is True and info["iterations"]["total_steps"] == 16
    assert info["iterations"]["steps_per_epoch"] == info["iterations"]["train_examples"] // 2
    assert info["data"]["train"]["sha256"] and info["versions"]["mlx"] and info["backend"]["device"] in ("cpu", "gpu")
    valid = [m["val_loss"] for m in RunFolder(run).read_metrics() if m["type"] == "valid"]
    assert len(valid) == 3 and valid[-1] < valid[0] - 0.2, valid
    train_entries = [m for m in RunFolder(run).read_metrics() if m["type"] == "train"]
    assert all(m["tokens_per_second"] > 0 and m["peak_memory_gb"] > 0 for m in train_entries)
    config = json.loads((run / "adapters" / "adapter_config.json").read_text())
    assert config["fine_tune_type"] == "lora" and config["lora_parameters"]["rank"] == 4
    assert (run / "adapters" / "last" / "adapters.safetensors").exists()

    model = str(resolve_model("tiny"))
    generate = subprocess.run(
        [sys.executable, "-m", "mlx_lm", "generate", "--model", model, "--adapter-path", str(run / "adapters"),
         "--prompt", "Quem fundou o Farense?", "--max-tokens", "5"],
        capture_output=True, text=True, timeout=300,
    )
    assert generate.returncode == 0, generate.stderr
    assert "Generation:" in generate.stdout or "tokens-per-sec" in generate.stdout


def wait_for_checkpoint(run, step, process, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if step in RunFolder(run).checkpoint_steps():
            return
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.stderr.read()}")
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint {step} in {timeout} s")


def test_sigkill_and_resume_give_the_uninterrupted_adapter(tmp_path):
    steps = ["--max-steps", "10", "--set", "save_every=2", "--set", "steps_per_eval=4", "--set", "lora.dropout=0.1"]
    assert train(tmp_path, "whole", *steps).returncode == 0

    # 1. SIGKILL half-way through writing the checkpoint of step 4: step 2's stays whole.
    killed = train(tmp_path, "cut", *steps, env={"FARENSE_FAULT_KILL_IN_CHECKPOINT": "4"})
    assert killed.returncode != 0
    run = tmp_path / "cut"
    assert RunFolder(run).checkpoint_steps() == [2]
    assert list((run / "checkpoints").glob(".step-0000004.*")), "the half-written checkpoint should be left as a temporary"

    # 2. Resume, and SIGKILL the resumed process from outside once step 6 is saved.
    command = [sys.executable, "-m", "farense_guide", "train", "--resume", str(run)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_checkpoint(run, 6, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    shown = run_cli("monitor", str(run), "--once")
    assert "parado sem aviso" in shown.stdout, shown.stdout  # run.json still says running; its process is gone

    # 3. Resume to the end.
    resumed = run_cli("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_adapters(tmp_path / "whole" / "adapters" / "last", run / "adapters" / "last")
    assert losses(tmp_path / "whole") == losses(run)  # the same metrics, step for step
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumed_at"]) == 2


def test_two_processes_give_the_loss_curve_of_one(tmp_path):
    steps = ["--max-steps", "6", "--set", "steps_per_eval=3", "--set", "save_every=3"]
    single = train(tmp_path, "one", *steps)
    double = train(tmp_path, "two", *steps, "--processes", "2")
    assert single.returncode == 0 and double.returncode == 0, double.stderr
    # No terminal here: the bar draws nothing, but each report is a line with the time left.
    reports = [line for line in single.stderr.splitlines() if line.startswith("passo") and "tokens/s" in line]
    assert len(reports) == 6 and all("· faltam " in line for line in reports), single.stderr
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [x[:2] for x in one] == [x[:2] for x in two]
    assert [x[2] for x in one] == pytest.approx([x[2] for x in two], abs=1e-4)
    assert json.loads((tmp_path / "two" / "run.json").read_text())["processes"] == 2


def test_ctrl_c_saves_a_checkpoint_and_prints_how_to_resume(tmp_path):
    command = [sys.executable, "-m", "farense_guide", "train", *SHORT, "--runs-dir", str(tmp_path), "--run-name", "stop",
               "--max-steps", "200", "--set", "save_every=100", "--set", "steps_per_eval=100"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run = RunFolder(tmp_path / "stop")
    deadline = time.time() + 240
    while time.time() < deadline and not any(m["type"] == "train" for m in run.read_metrics()):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"Para retomar: farense-guide train --resume {run.path}" in err
    info = run.read_info()
    assert info.status is RunStatus.INTERRUPTED
    assert run.checkpoint_steps() == [info.steps_done] and 0 < info.steps_done < 200


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, train_here, capsys):
    from mlx_lm.tuner.trainer import default_loss

    def loss_turning_nan(model, batch, lengths):
        # NaN once the LoRA B matrices (zero at the start) have grown past a threshold: a few steps in.
        ce, tokens = default_loss(model, batch, lengths)
        growth = mx.stack([mx.abs(p).max() for name, p in _flat(model.trainable_parameters()) if name.endswith("lora_b")]).max()
        return mx.where(growth > 0.0045, mx.array(float("nan")), ce), tokens

    info, run = train_here(tmp_path, "nan", "max_steps=20", "save_every=1", "steps_per_eval=100", "steps_per_report=5",
                           loss_fn=loss_turning_nan)
    assert info.status is RunStatus.FAILED_NAN
    bad_step = info.steps_done + 1
    assert 2 <= bad_step < 20
    assert run.checkpoint_steps()[-1] == info.steps_done
    last_good = adapters(run.checkpoint(info.steps_done))
    assert all(mx.all(mx.isfinite(v)).item() for v in last_good.values())
    assert all(m["step"] < bad_step for m in run.read_metrics())
    assert run.read_info().status is RunStatus.FAILED_NAN
    assert report_end(info, run) == 1
    assert f"o último checkpoint bom é o do passo {info.steps_done}" in capsys.readouterr().err


def _flat(tree):
    from mlx.utils import tree_flatten

    return tree_flatten(tree)


def test_a_profile_that_cannot_fit_is_refused_before_loading(tmp_path):
    from farense_guide.inference import default_device

    if default_device() == "gpu":
        pytest.skip("on a GPU the 7B profile is QLoRA")
    result = run_cli("train", "--profile", "m1-16gb", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert "não cabe" in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.glob("m1-16gb-*"))


def test_an_existing_run_is_not_overwritten(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "run.json").write_text("{}")
    result = train(tmp_path, "taken", "--max-steps", "2")
    assert result.returncode == 2 and "--resume" in result.stderr


def test_monitor_once_shows_the_run(tmp_path, train_here):
    train_here(tmp_path, "seen", "max_steps=4", "steps_per_eval=2")
    result = run_cli("monitor", str(tmp_path / "seen"), "--once")
    assert result.returncode == 0
    for words in ("terminado", "perda de treino", "perda de validação", "tokens/s", "4 / 4"):
        assert words in result.stdout, result.stdout
    assert any(block in result.stdout for block in "▁▂▃▄▅▆▇█")


def test_early_stopping_when_validation_stops_improving(tmp_path, train_here, capsys):
    # With a zero learning rate the validation loss cannot improve: patience 2 stops at the 2nd evaluation.
    info, run = train_here(tmp_path, "flat", "max_steps=20", "learning_rate=0.0", "steps_per_eval=2", "early_stopping_patience=2")
    assert report_end(info, run) == 0
    recorded = json.loads((tmp_path / "flat" / "run.json").read_text())
    assert recorded["status"] == "early_stopped" and recorded["steps_done"] == 4
    assert "parado cedo" in capsys.readouterr().out


def test_gradient_accumulation_and_checkpointing_train(tmp_path, train_here):
    info, _ = train_here(tmp_path, "acc", "max_steps=8", "grad_accumulation=2", "grad_checkpoint=true", "steps_per_eval=4")
    assert info.status is RunStatus.COMPLETED
    info = json.loads((tmp_path / "acc" / "run.json").read_text())
    assert info["iterations"]["optimizer_steps"] == 4 and info["iterations"]["effective_batch"] == 4
    assert info["profile"]["grad_checkpoint"] is True
    valid = [m["val_loss"] for m in RunFolder(tmp_path / "acc").read_metrics() if m["type"] == "valid"]
    assert valid[-1] < valid[0]


def test_chat_with_a_run_and_the_base_side_by_side(tmp_path, train_here):
    train_here(tmp_path, "talk", "max_steps=2", "steps_per_eval=2")
    result = run_cli("chat", "--adapter", str(tmp_path / "talk"), "--base", "Quem fundou o Farense?", "--max-tokens", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("base> ") and "\nafinado> " in result.stdout
    missing = run_cli("chat", "--adapter", str(tmp_path), "Olá")
    assert missing.returncode == 2 and "adapter_config.json" in missing.stderr


def test_report_end_words_and_exit_status(tmp_path, capsys):
    """The end of a run as the terminal says it, for each status."""
    from farense_guide.runs import Backend, Best, Iterations, RunInfo

    run = RunFolder(tmp_path / "r")
    info = RunInfo(name="r", profile=load_profile("tiny"), iterations=Iterations(1, 2, 2, 2, 1, 2, 1, 1, 1, 1, False), data={},
                   backend=Backend("cpu", "LoRA", None, "m"), steps_done=7, best=Best(step=5, val_loss=1.25))
    expected = {RunStatus.COMPLETED: (0, "Treino terminado: 7 passos; melhor perda de validação 1.2500 no passo 5."),
                RunStatus.EARLY_STOPPED: (0, "parado cedo"),
                RunStatus.INTERRUPTED: (130, f"Para retomar: farense-guide train --resume {run.path}"),
                RunStatus.FAILED_NAN: (1, "não havia checkpoint anterior")}
    for status, (code, words) in expected.items():
        info.status = status
        assert report_end(info, run) == code
        shown = capsys.readouterr()
        assert words in shown.out + shown.err, (status, shown)


def test_a_small_data_set_warns_of_the_examples_left_out_and_of_a_warm_up_longer_than_the_run():
    from farense_guide.steps.train import plan_iterations, plan_warnings

    profile = apply_overrides(load_profile("tiny"), ["batch_size=4", "max_steps=null", "epochs=3", "lr_schedule=cosine", "warmup_steps=20"])
    left_out, warm_up = plan_warnings(profile, plan_iterations(profile, train_examples=18, valid_examples=4))
    assert left_out.startswith("2 dos 18 exemplos de treino") and "batch_size=4" in left_out
    assert "warmup_steps=20" in warm_up and "12 atualizações" in warm_up and "fica com 11" in warm_up
    fits = apply_overrides(profile, ["warmup_steps=2"])
    assert plan_warnings(fits, plan_iterations(fits, train_examples=16, valid_examples=4)) == []
