"""Run folders under hostile use: two trainers on one name, commands on a run still training, broken
checkpoints, and a resume that must write the metrics of a run never interrupted (issue 20)."""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import mlx.core as mx
import pytest

from conftest import ROOT, run_cli
from farense_guide.errors import FarenseError
from farense_guide.runs import RunFolder, RunStatus
from farense_guide.steps.train import FAULT_KILL_IN_CHECKPOINT

SHORT = ["--profile", "tiny", "--set", "val_batches=2"]
# A checkpoint every 2 steps, a report every 3: checkpoints 2 and 4 fall inside a report window.
STEPS = ["--max-steps", "10", "--set", "save_every=2", "--set", "steps_per_report=3", "--set", "steps_per_eval=4",
         "--set", "keep_checkpoints=3"]
# Left out of the comparison of metrics.jsonl, because they measure this process rather than the training:
# tokens_per_second and elapsed_s are wall-clock times; peak_memory_gb is the process's memory high-water mark,
# which a resumed process starts afresh. Every other field (type, step, epoch, train_loss, learning_rate,
# trained_tokens, val_loss) must be equal, line for line.
TIMING = {"tokens_per_second", "elapsed_s", "peak_memory_gb"}


def train(runs, name, *extra, env=None):
    return run_cli("train", *SHORT, "--runs-dir", str(runs), "--run-name", name, *extra, env=env)


def comparable(run) -> list[dict]:
    return [{key: value for key, value in entry.items() if key not in TIMING} for entry in RunFolder(run).read_metrics()]


def snapshot(folder) -> dict:
    """Every file under a folder and its bytes (the lock file aside: a killed trainer leaves it, a claim removes it)."""
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != ".lock"}


def assert_same_adapters(a, b):
    first, second = mx.load(str(a / "adapters.safetensors")), mx.load(str(b / "adapters.safetensors"))
    assert first.keys() == second.keys()
    assert all(mx.array_equal(first[key], second[key]).item() for key in first)


def killed_at_checkpoint(runs, name, step) -> RunFolder:
    """A run SIGKILLed half-way through saving the checkpoint of `step`: the checkpoints before it are whole."""
    result = train(runs, name, *STEPS, env={FAULT_KILL_IN_CHECKPOINT: str(step)})
    assert result.returncode != 0
    return RunFolder(runs / name)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The run never interrupted that the resumed ones are compared with."""
    runs = tmp_path_factory.mktemp("whole")
    result = train(runs, "whole", *STEPS)
    assert result.returncode == 0, result.stderr
    return runs / "whole"


def test_the_lock_in_one_process(tmp_path):
    run = RunFolder(tmp_path / "locked")
    assert run.training_holder() is None
    with run.claimed(new=True):
        holder = run.training_holder()
        assert (holder.pid, holder.host) == (os.getpid(), platform.node())
        with pytest.raises(FarenseError, match=f"este run já está a ser treinado pelo processo {os.getpid()} em "):
            with run.claimed(new=False):
                pass
    assert run.training_holder() is None and not run.lock_file.exists()
    assert not run.path.exists(), "a new run that never wrote run.json leaves no folder"


def test_two_trainers_on_one_name_one_is_refused_before_loading(tmp_path):
    command = [sys.executable, "-m", "farense_guide", "train", *SHORT, "--runs-dir", str(tmp_path), "--run-name", "twice",
               "--max-steps", "20"]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs, still_running_when_refused = {}, []
    deadline = time.time() + 300
    while len(outputs) < 2 and time.time() < deadline:
        for index, process in enumerate(processes):
            if index not in outputs and process.poll() is not None:
                other = processes[1 - index]
                still_running_when_refused.append(other.poll() is None)
                outputs[index] = process.communicate()
        time.sleep(0.1)
    assert len(outputs) == 2, "the trainers did not end in 300 s"
    codes = sorted(process.returncode for process in processes)
    assert codes[0] == 0 and codes[1] != 0, [outputs[i][1] for i in outputs]
    loser = next(i for i, process in enumerate(processes) if process.returncode != 0)
    _, err = outputs[loser]
    run = RunFolder(tmp_path / "twice")
    info = run.read_info()
    assert info.status is RunStatus.COMPLETED
    match = re.search(rf"erro: {re.escape(str(run.path))}: este run já está a ser treinado pelo processo (\d+) em (\S+)\.", err)
    assert match, err
    assert int(match[1]) == info.process["pid"] and match[2] == platform.node()
    # Refused before loading a model: no training line, and it ended while the winner still trained.
    assert "treino: passos" not in err and "validação" not in err and "Traceback" not in err, err
    assert still_running_when_refused[0], "the refused trainer should end while the winner trains"
    valid_at_0 = [m for m in run.read_metrics() if m["type"] == "valid" and m["step"] == 0]
    assert len(valid_at_0) == 1 and info.steps_done == 20
    assert not run.lock_file.exists()


def test_commands_refuse_a_run_still_training_unless_allowed(tmp_path, whole):
    run = RunFolder(shutil.copytree(whole, tmp_path / "held"))
    with run.claimed(new=False):
        before = snapshot(run.path)
        holder = f"processo {os.getpid()} em {platform.node()}"
        for command in (["evaluate", "--limit", "2"], ["fuse", "--limit", "2"], ["report"], ["export", "--gguf"]):
            result = run_cli(command[0], str(run.path), *command[1:])
            assert result.returncode == 2, (command, result.stderr)
            assert f"erro: {run.path}: o treino deste run ainda está a decorrer ({holder})" in result.stderr, result.stderr
            assert "--allow-running" in result.stderr and "Traceback" not in result.stderr
        resumed = run_cli("train", "--resume", str(run.path))
        assert resumed.returncode == 2
        assert f"erro: {run.path}: este run já está a ser treinado pelo {holder}." in resumed.stderr, resumed.stderr
        again = train(tmp_path, "held", "--max-steps", "2")
        assert again.returncode == 2 and f"este run já está a ser treinado pelo {holder}" in again.stderr, again.stderr
        assert snapshot(run.path) == before

        allowed = run_cli("evaluate", str(run.path), "--limit", "2", "--max-tokens", "4", "--allow-running")
        assert allowed.returncode == 0, allowed.stderr
        assert f"aviso: {run.path}: o treino deste run ainda está a decorrer ({holder})" in allowed.stderr
        assert run.evaluation_report.is_file()
    assert run.training_holder() is None and not run.lock_file.exists()


def test_a_truncated_checkpoint_is_skipped_and_the_run_resumes_from_the_one_before(tmp_path, whole):
    run = killed_at_checkpoint(tmp_path, "cut", 6)
    assert run.checkpoint_steps() == [2, 4]
    os.truncate(run.checkpoint(4) / "adapters.safetensors", 1000)
    resumed = run_cli("train", "--resume", str(run.path))
    assert resumed.returncode == 0, resumed.stderr
    assert (f"aviso: {run.checkpoint(4)} ignorado (adapters.safetensors tem 1000 bytes e o manifesto diz" in resumed.stderr
            and "A retomar do checkpoint do passo 2, o mais recente intacto." in resumed.stderr), resumed.stderr
    assert run.read_info().status is RunStatus.COMPLETED
    assert comparable(run.path) == comparable(whole)
    assert_same_adapters(whole / "adapters" / "last", run.path / "adapters" / "last")


def test_checkpoints_without_a_manifest_count_only_if_they_load(tmp_path, whole):
    """Checkpoints saved before manifests existed cannot be verified: resume tries them, and skips one that does not load."""
    run = killed_at_checkpoint(tmp_path, "old", 6)
    for step in (2, 4):
        (run.checkpoint(step) / "manifest.json").unlink()
    os.truncate(run.checkpoint(4) / "optimizer.safetensors", 1000)

    broken = RunFolder(shutil.copytree(run.path, tmp_path / "broken"))
    os.truncate(broken.checkpoint(2) / "adapters.safetensors", 1000)
    before = snapshot(broken.path)
    failed = run_cli("train", "--resume", str(broken.path))
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert f"erro: {broken.path}: nenhum checkpoint está intacto (passo 4: não se consegue ler" in failed.stderr, failed.stderr
    assert snapshot(broken.path) == before

    resumed = run_cli("train", "--resume", str(run.path))
    assert resumed.returncode == 0, resumed.stderr
    assert f"aviso: {run.checkpoint(4)} ignorado (não se consegue ler" in resumed.stderr, resumed.stderr
    assert "A retomar do checkpoint do passo 2" in resumed.stderr
    assert comparable(run.path) == comparable(whole)


def test_a_resumed_run_writes_the_metrics_of_an_uninterrupted_one(tmp_path, whole):
    run = killed_at_checkpoint(tmp_path, "resumed", 6)
    state = json.loads((run.checkpoint(4) / "state.json").read_text())
    assert state["window"]["steps"] == 1, "checkpoint 4 falls inside the report window of steps 4 to 6"
    resumed = run_cli("train", "--resume", str(run.path))
    assert resumed.returncode == 0, resumed.stderr
    assert "ignorado" not in resumed.stderr
    whole_lines, resumed_lines = comparable(whole), comparable(run.path)
    assert len(resumed_lines) == len(whole_lines) == 8  # valid 0, 4, 8, 10; train 3, 6, 9, 10
    for expected, got in zip(whole_lines, resumed_lines):
        assert got == expected
    full = run.read_metrics()
    assert all(set(entry) - TIMING == set(line) for entry, line in zip(full, resumed_lines))
    assert_same_adapters(whole / "adapters" / "last", run.path / "adapters" / "last")
