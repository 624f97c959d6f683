"""`farense-guide train` against `mlx_lm lora`, and estimated against measured peak memory.

Both trainers run, in this one run, on the same float32 copy of SmolLM2-135M-Instruct,
the same data (data/), the same LoRA settings, batch and sequence limit, each in its own
process with the fast BLAS preloaded, in alternating rounds (medians); the first report window
(compilation) is left out.

    python bench/bench_train.py [--steps 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from farense_guide import blas

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
SETTINGS = {"rank": 8, "scale": 20.0, "dropout": 0.0, "layers": 16, "batch": 4, "lr": 2e-4, "max_seq_length": 512, "seed": 0}
REPORT_EVERY = 5


def worker_mlx_lm(model: str, steps: int, out: Path) -> dict:
    import types

    import numpy as np
    from mlx_lm import lora
    from mlx_lm.tuner.callbacks import TrainingCallback

    class Collect(TrainingCallback):
        reports: list = []

        def on_train_loss_report(self, info):
            self.reports.append(info["tokens_per_second"])

    args = dict(lora.CONFIG_DEFAULTS)
    args.update(model=model, train=True, data=str(ROOT / "data"), iters=steps, batch_size=SETTINGS["batch"],
                num_layers=SETTINGS["layers"], learning_rate=SETTINGS["lr"], max_seq_length=SETTINGS["max_seq_length"],
                steps_per_report=REPORT_EVERY, steps_per_eval=10**9, val_batches=1, save_every=10**9, mask_prompt=True,
                adapter_path=str(out), seed=SETTINGS["seed"],
                lora_parameters={"rank": SETTINGS["rank"], "scale": SETTINGS["scale"], "dropout": SETTINGS["dropout"]})
    collector = Collect()
    # What `mlx_lm lora` runs (mlx_lm.lora.run drops a callback passed to it, so its steps are repeated here).
    namespace = types.SimpleNamespace(**args)
    np.random.seed(namespace.seed)
    model, tokenizer = lora.load(namespace.model)
    train_set, valid_set, _ = lora.load_dataset(namespace, tokenizer)
    lora.train_model(namespace, model, train_set, valid_set, collector)
    return {"tokens_per_second": collector.reports[1:]}


def worker_farense(model: str, steps: int, out: Path, profile: str = "smollm2", data: str = "") -> dict:
    from farense_guide.config import apply_overrides, load_profile
    from farense_guide.runs import RunFolder
    from farense_guide.steps.train import TrainPlan, train

    changes = [f"max_steps={steps}", f"steps_per_report={REPORT_EVERY}", "steps_per_eval=1000000000", "val_batches=1",
               "save_every=1000000000", "early_stopping_patience=0"]
    if data:
        changes.append(f"data={data}")
    if model:
        changes += [f"model={model}", f"lora.rank={SETTINGS['rank']}", f"lora.scale={SETTINGS['scale']}",
                    f"lora.dropout={SETTINGS['dropout']}", f"lora.num_layers={SETTINGS['layers']}", f"batch_size={SETTINGS['batch']}",
                    f"learning_rate={SETTINGS['lr']}", "lr_schedule=constant", f"max_seq_length={SETTINGS['max_seq_length']}",
                    f"seed={SETTINGS['seed']}"]
    run = RunFolder(out / "run")
    info = train(TrainPlan(apply_overrides(load_profile(profile), changes), run, command=["bench"]))
    reports = [m["tokens_per_second"] for m in run.read_metrics() if m["type"] == "train"]
    return {"tokens_per_second": reports[1:], "peak_gb": info.memory["peak_gb"], "estimate": info.memory["estimate"]}


def in_child(kind: str, model: str, steps: int, profile: str = "smollm2", data: str = "") -> dict:
    with tempfile.TemporaryDirectory() as out:
        env = blas.blas_env()
        env.setdefault("TRANSFORMERS_VERBOSITY", "error")
        result = subprocess.run([sys.executable, __file__, "--worker", kind, "--model", model, "--steps", str(steps),
                                 "--profile", profile, "--out", out, "--data", data],
                                env=env, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            sys.exit(result.stderr[-3000:])
        return json.loads(result.stdout.strip().splitlines()[-1])


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def longest_examples(profile: str, folder: Path, count: int = 16) -> Path:
    """A data folder of the `count` longest training examples, so every measured batch is a longest one."""
    from farense_guide.data.validate import validate
    from farense_guide.models import load_tokenizer
    from farense_guide.config import load_profile

    settings = load_profile(profile)
    examples = validate(ROOT / settings.data, load_tokenizer(settings.model)).files["train"].examples
    lines = (ROOT / settings.data / "train.jsonl").read_text(encoding="utf-8").splitlines()
    longest = sorted(examples, key=lambda e: e.tokens, reverse=True)[:count]
    text = "\n".join(lines[e.line - 1] for e in longest) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid"):
        (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return folder


def padded_max_length(profile: str) -> int:
    """Longest batch the trainer builds: the longest example, padded to 32 * k + 1, capped."""
    from farense_guide.data.validate import validate
    from farense_guide.models import load_tokenizer
    from farense_guide.config import load_profile

    settings = load_profile(profile)
    result = validate(ROOT / settings.data, load_tokenizer(settings.model))
    longest = max(e.tokens for e in result.files["train"].examples)
    return min(1 + 32 * ((longest + 31) // 32), settings.max_seq_length)


def estimate_at(profile: str, seq_length: int) -> float:
    from dataclasses import replace

    from farense_guide.config import load_profile
    from farense_guide.memory import estimate_for, training_shape

    settings = replace(load_profile(profile), max_seq_length=seq_length)
    return estimate_for(settings, training_shape(settings), quantized=False)[0].total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the two trainers; medians reported")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="smollm2", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.worker == "mlx_lm":
        print(json.dumps(worker_mlx_lm(args.model, args.steps, args.out)))
        return
    if args.worker == "farense":
        print(json.dumps(worker_farense(args.model, args.steps, args.out, args.profile, args.data)))
        return

    from farense_guide.models import float32_model

    model = str(float32_model("smollm2"))
    speeds = {"farense": [], "mlx_lm": []}
    for round_ in range(args.rounds):  # alternating, each trainer first in every other round
        for kind in ("farense", "mlx_lm") if round_ % 2 == 0 else ("mlx_lm", "farense"):
            speeds[kind].append(mean(in_child(kind, model, args.steps)["tokens_per_second"]))
    ours, theirs = statistics.median(speeds["farense"]), statistics.median(speeds["mlx_lm"])
    print(f"Treino LoRA, SmolLM2-135M float32, rank {SETTINGS['rank']}, {SETTINGS['layers']} camadas, batch {SETTINGS['batch']}, "
          f"{args.steps} passos (sem a 1.ª janela), medianas de {args.rounds} rondas alternadas, BLAS {blas.blas_label()}:")
    print(f"  farense-guide train: {ours:.1f} tokens/s · mlx_lm lora: {theirs:.1f} tokens/s · razão {ours / theirs:.2f} "
          f"(objetivo >= 1,0)")
    print(f"  por ronda: farense-guide {', '.join(f'{v:.1f}' for v in speeds['farense'])} · "
          f"mlx_lm {', '.join(f'{v:.1f}' for v in speeds['mlx_lm'])}")
    print("Memória de pico, estimada (no comprimento do batch mais longo) contra medida (mx.get_peak_memory) em passos "
          "só com os exemplos mais longos:")
    for profile, steps in (("tiny", 10), ("smollm2", 10)):
        with tempfile.TemporaryDirectory() as folder:
            data = longest_examples(profile, Path(folder))
            measured = in_child("farense", "", steps, profile, str(data))["peak_gb"] * 1e9
        estimated = estimate_at(profile, padded_max_length(profile))
        print(f"  {profile}: estimada {estimated / 1e9:.2f} GB · medida {measured / 1e9:.2f} GB · "
              f"razão {estimated / measured:.2f} (objetivo: dentro de 15%)")


if __name__ == "__main__":
    main()
