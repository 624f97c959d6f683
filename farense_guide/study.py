"""The recipe study: what each variation of a profile did to quality, against what it costs to train on the CPU.

runs/study/
  <name>/                 one run folder per recipe (run.json, metrics.jsonl, evaluation/ where evaluated)
  calibration/<shape>/    short CPU runs of each shape (LoRA layers, rank, batch): the CPU's seconds per step
  study.json, study.csv   one row per recipe, made by `farense-guide study`
  study.png               validation loss and test F1 against CPU training minutes

A recipe's CPU training time is measured when it trained on the CPU (run.json's train_seconds). A run
trained on a GPU has it estimated: its steps times the median seconds per step of the CPU calibration
run of the same shape, which trained on the same data in the same order. Rows say which.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.plots import COLOURS, pyplot, save
from farense_guide.runs import RunFolder, read_json, safe_write, write_json

CALIBRATION = "calibration"
COLUMNS = ("name", "device", "learning_rate", "steps", "epochs", "lora_layers", "lora_rank", "lora_scale", "lora_dropout",
           "batch_size", "mask_prompt", "seed", "val_loss", "best_val_loss", "test_f1", "test_f1_low", "test_f1_high",
           "test_auc", "refusals_out_of_scope", "cpu_minutes", "cpu_minutes_source")


def shape_of(info: dict) -> tuple[int, int, int]:
    """What a training step's CPU cost depends on: adapted layers, LoRA rank, batch size."""
    profile = info["profile"]
    return profile["lora"]["num_layers"], profile["lora"]["rank"], profile["batch_size"]


def seconds_per_step(run: RunFolder) -> float:
    """The median seconds per step between training reports, leaving out the first (compilation and warm-up)."""
    reports = [row for row in run.read_metrics() if row.get("type") == "train" and "elapsed_s" in row]
    spans = [(b["elapsed_s"] - a["elapsed_s"]) / (b["step"] - a["step"]) for a, b in zip(reports[1:], reports[2:])]
    if not spans:
        raise FarenseError(f"{run.metrics}: a calibração precisa de pelo menos 3 relatórios de treino.")
    return statistics.median(spans)


def calibration(folder: Path) -> dict[tuple[int, int, int], float]:
    runs = [RunFolder(path.parent) for path in sorted((folder / CALIBRATION).glob("*/run.json"))]
    return {shape_of(read_json(run.run_json)): seconds_per_step(run) for run in runs}


def last_validation(run: RunFolder) -> float | None:
    losses = [row["val_loss"] for row in run.read_metrics() if row.get("type") == "valid"]
    return losses[-1] if losses else None


def study_row(run: RunFolder, cpu_seconds_per_step: dict) -> dict:
    info = read_json(run.run_json)
    profile, iterations = info["profile"], info["iterations"]
    steps = iterations["total_steps"]
    if info["backend"]["device"] == "cpu":
        cpu_seconds, source = info["throughput"]["train_seconds"], "medido"
    elif shape_of(info) in cpu_seconds_per_step:
        cpu_seconds, source = steps * cpu_seconds_per_step[shape_of(info)], "estimado"
    else:
        cpu_seconds, source = None, "sem calibração"
    row = {"name": run.name, "device": info["backend"]["device"], "learning_rate": profile["learning_rate"], "steps": steps,
           "epochs": round(steps / iterations["steps_per_epoch"], 3), "lora_layers": profile["lora"]["num_layers"],
           "lora_rank": profile["lora"]["rank"], "lora_scale": profile["lora"]["scale"], "lora_dropout": profile["lora"]["dropout"],
           "batch_size": profile["batch_size"], "mask_prompt": profile["mask_prompt"], "seed": profile["seed"],
           "val_loss": last_validation(run), "best_val_loss": (info.get("best") or {}).get("val_loss"),
           "cpu_minutes": None if cpu_seconds is None else round(cpu_seconds / 60, 2), "cpu_minutes_source": source}
    report = run.evaluation / "evaluation_report.json"
    tuned = read_json(report)["tuned"] if report.is_file() else None
    row.update({"test_f1": tuned and tuned["f1"]["mean"], "test_f1_low": tuned and tuned["f1"]["ci_low"],
                "test_f1_high": tuned and tuned["f1"]["ci_high"], "test_auc": tuned and tuned["auc"],
                "refusals_out_of_scope": tuned and tuned["refusal_rate_out_of_scope"]["mean"]})
    return {column: row[column] for column in COLUMNS}


def study_rows(folder: Path, others: list[Path] = ()) -> list[dict]:
    """Every finished run under `folder` (the calibration runs apart) and the `others` (e.g. runs/reference), by CPU minutes."""
    seconds = calibration(folder)
    runs = [RunFolder(path.parent) for path in sorted(folder.glob("*/run.json")) if path.parent.name != CALIBRATION]
    runs += [RunFolder(path) for path in others]
    finished = [run for run in runs if read_json(run.run_json).get("status") == "completed"]
    if not finished:
        raise FarenseError(f"{folder}: nenhum run terminado (pastas com run.json e status completed).")
    return sorted((study_row(run, seconds) for run in finished), key=lambda row: (row["cpu_minutes"] is None, row["cpu_minutes"] or 0))


def study_figure(rows: list[dict], path: Path) -> Path:
    """Validation loss (every recipe) and test F1 (the evaluated ones) against CPU minutes; hollow: estimated time.
    A recipe whose loss also counts the prompt (mask_prompt false) has a validation loss on other tokens: left out."""
    from matplotlib.ticker import ScalarFormatter

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = ((axes[0], "val_loss", "perda de validação no fim", COLOURS["valid"]),
              (axes[1], "test_f1", "F1 de tokens no teste (afinado)", COLOURS["test"]))
    for ax, key, label, colour in panels:
        shown = [r for r in rows if r[key] is not None and r["cpu_minutes"] is not None and (key != "val_loss" or r["mask_prompt"])]
        for row in shown:
            ax.plot(row["cpu_minutes"], row[key], "o", color=colour, mfc=None if row["cpu_minutes_source"] == "medido" else "white")
            ax.annotate(row["name"], (row["cpu_minutes"], row[key]), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_ylabel(label)
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_formatter(ScalarFormatter())
    fig.supxlabel("minutos de treino no CPU de 2 núcleos (cheio: medido; vazio: estimado)")
    fig.suptitle("Estudo da receita: qualidade contra custo de treino no CPU")
    return save(fig, path)


def build_study(folder: Path, others: list[Path] = ()) -> list[Path]:
    """study.json, study.csv and study.png in `folder`, from its run folders and the `others`."""
    import pandas as pd

    rows = study_rows(folder, others)
    written = [write_json(folder / "study.json", {"columns": list(COLUMNS), "rows": rows})]
    written.append(safe_write(folder / "study.csv", pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False)))
    written.append(study_figure(rows, folder / "study.png"))
    return written
