"""Over- and under-fitting read from the loss curves (chapter 13): the run's own validation curve, and the recipe
study's runs in runs/study/ grouped by what their curves did, each reading by a rule below, never by eye.

Fragment (guide/_generated/): curves_study.md. Values: curves.* (curves.own.* for the run's own curve).
"""

from __future__ import annotations

from pathlib import Path

from farense_guide.pt_format import pt, pt_learning_rate
from farense_guide.runs import RunFolder, read_json
from farense_guide.steps.compare import markdown_table

STUDY = Path("runs/study")
RISE = 0.05  # a validation loss that ends this much above its minimum rose after it (overfitting)
FAR = 2.0  # a run that ends above this many times the study's lowest final validation loss stopped far from it

DIVERGED, ROSE, FELL, FAR_OFF = "divergiu", "subiu depois do mínimo", "desceu até ao fim", "desceu, mas acabou longe do mínimo do estudo"


def curve_reading(valid_losses: list[float]) -> str | None:
    """What a validation curve did: ended above where it started (diverged), rose at least RISE above its minimum
    before the end (overfitting's sign), or fell to the end; None with fewer than two validations."""
    if len(valid_losses) < 2:
        return None
    low = min(valid_losses)
    if valid_losses[-1] > valid_losses[0]:
        return DIVERGED
    if valid_losses.index(low) < len(valid_losses) - 1 and valid_losses[-1] >= low * (1 + RISE):
        return ROSE
    return FELL


def study_runs(folder: Path | None = None) -> list[dict]:
    """Each run of the study with its validation losses, last training loss, learning rate and test F1 (None where
    it was not evaluated). Runs with the loss on the prompt too (mask_prompt false) are left out: their losses count
    other tokens and do not compare."""
    runs = []
    for run_json in sorted((folder or STUDY).glob("*/run.json")):
        run = RunFolder(run_json.parent)
        profile = read_json(run_json)["profile"]
        entries = run.read_metrics()
        valid = [entry["val_loss"] for entry in entries if entry.get("type") == "valid"]
        train = [entry["train_loss"] for entry in entries if entry.get("type") == "train"]
        if not profile.get("mask_prompt", True) or len(valid) < 2 or not train:
            continue
        report = run.evaluation_report
        f1 = read_json(report)["tuned"]["f1"]["mean"] if report.is_file() else None
        runs.append({"name": run.name, "valid": valid, "train": train[-1], "learning_rate": profile["learning_rate"], "f1": f1})
    return runs


def study_readings(runs: list[dict]) -> dict[str, list[dict]]:
    """The study's runs by what their curves did; a run that fell to the end but stopped above FAR times the lowest
    final validation loss of the runs that fell is read as stopped far from it (underfitting)."""
    readings = {DIVERGED: [], ROSE: [], FAR_OFF: [], FELL: []}
    for run in runs:
        readings[curve_reading(run["valid"])].append(run)
    if readings[FELL]:
        lowest = min(run["valid"][-1] for run in readings[FELL])
        readings[FAR_OFF] = [run for run in readings[FELL] if run["valid"][-1] > FAR * lowest]
        readings[FELL] = [run for run in readings[FELL] if run["valid"][-1] <= FAR * lowest]
    return readings


def span(values: list[float], digits: int) -> str:
    values = [value for value in values if value is not None]
    if not values:
        return "—"
    low, high = min(values), max(values)
    return pt(low, digits) if pt(low, digits) == pt(high, digits) else f"{pt(low, digits)} a {pt(high, digits)}"


def study_markdown(readings: dict[str, list[dict]]) -> str:
    if not any(readings.values()):
        return f"*Nenhum run do estudo em `{STUDY}/`: não há curvas para ler.*\n"
    rows = [["leitura da curva de validação", "runs", "quais", "taxas de aprendizagem", "última perda de validação",
             "última perda de treino", "F1 de teste (dos avaliados)"]]
    for reading, runs in readings.items():
        if not runs:
            rows.append([reading, "0", "nenhum", "—", "—", "—", "—"])
            continue
        names = ", ".join(f"`{run['name']}`" for run in runs) if reading != FELL else f"os outros {len(runs)}"
        rates = ", ".join(pt_learning_rate(rate) for rate in sorted({run["learning_rate"] for run in runs}))
        rows.append([reading, str(len(runs)), names, rates, span([run["valid"][-1] for run in runs], 3),
                     span([run["train"] for run in runs], 3), span([run["f1"] for run in runs], 3)])
    return "\n".join(markdown_table(rows)) + "\n"


def study_values(readings: dict[str, list[dict]]) -> dict[str, str]:
    runs = [run for group in readings.values() for run in group]
    values = {"runs": str(len(runs)), "rise": pt(RISE * 100, 0), "far": pt(FAR, 0)}
    values.update({key: str(len(readings[reading]))
                   for key, reading in (("diverged", DIVERGED), ("rose", ROSE), ("far_off", FAR_OFF), ("fell", FELL))})
    fell = readings[FELL]
    lowest = min(fell, key=lambda run: run["valid"][-1]) if fell else None
    values["lowest"] = pt(lowest["valid"][-1], 3) if lowest else "—"
    values["lowest_name"] = lowest["name"] if lowest else "—"
    # Among the runs that fell to the end, the widest gap between the last validation and the last training loss:
    # how far memorising went, and whether the test paid for it.
    gap = max(fell, key=lambda run: run["valid"][-1] - run["train"]) if fell else None
    values.update({"gap_name": gap["name"] if gap else "—", "gap_valid": pt(gap["valid"][-1], 3) if gap else "—",
                   "gap_train": pt(gap["train"], 3) if gap else "—",
                   "gap_f1": pt(gap["f1"], 3) if gap and gap["f1"] is not None else "—"})
    evaluated = [run["f1"] for run in runs if run["f1"] is not None]
    values["best_f1"] = pt(max(evaluated), 3) if evaluated else "—"
    return values


def own_values(run_path: Path) -> dict[str, str]:
    """The run's own validation curve, read by the same rule."""
    valid = [entry["val_loss"] for entry in RunFolder(run_path).read_metrics() if entry.get("type") == "valid"]
    return {"intervals": str(max(len(valid) - 1, 0)), "falls": str(sum(after < before for before, after in zip(valid, valid[1:]))),
            "reading": curve_reading(valid) or "sem validações suficientes"}


def fragment(run_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    readings = study_readings(study_runs())
    values = {**study_values(readings), **{f"own.{name}": value for name, value in own_values(run_path).items()}}
    return {"curves_study.md": study_markdown(readings)}, {f"curves.{name}": value for name, value in values.items()}


def sources(run_path: Path) -> list[Path]:
    files = [RunFolder(run_path).metrics]
    for run_json in sorted(STUDY.glob("*/run.json")):
        study_run = RunFolder(run_json.parent)
        files += [run_json, study_run.metrics, study_run.evaluation_report]
    return files
