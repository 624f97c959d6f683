"""The recipe study: what each variation of a profile did to quality, against what it costs to train on the CPU.

runs/study/
  <name>/                 one run folder per recipe (run.json, metrics.jsonl, evaluation/ where evaluated)
  calibration/<shape>/    short CPU runs of each shape (LoRA layers, rank, batch): the CPU's seconds per step
  study.json, study.csv   one row per recipe, made by `farense-guide study`
  study.png               test F1, AUC, out-of-scope refusals and validation loss against CPU training minutes

A recipe's CPU training time is measured when it trained on the CPU (run.json's train_seconds). A run
trained on a GPU has it estimated: its steps times the median seconds per step of the CPU calibration
run of the same shape, which trained on the same data in the same order. Rows say which.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.plots import COLOURS, pyplot, save
from farense_guide.pt_format import pt, pt_difference, pt_learning_rate, pt_mean_interval, pt_p_value, pt_signed
from farense_guide.runs import RunFolder, read_json, safe_write, write_json
from farense_guide.steps.compare import markdown_table

CALIBRATION = "calibration"
COLUMNS = ("name", "device", "learning_rate", "steps", "epochs", "lora_layers", "lora_rank", "lora_scale", "lora_dropout",
           "batch_size", "grad_accumulation", "lr_schedule", "warmup_steps", "mask_prompt", "loss_every_turn", "seed", "val_batches",
           "val_loss", "best_val_loss", "test_f1", "test_f1_low", "test_f1_high",
           "test_auc", "test_auc_low", "test_auc_high", "refusals_out_of_scope", "cpu_minutes", "cpu_minutes_source")


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
           "batch_size": profile["batch_size"], "grad_accumulation": profile["grad_accumulation"],
           "lr_schedule": profile["lr_schedule"], "warmup_steps": profile["warmup_steps"], "mask_prompt": profile["mask_prompt"],
           "loss_every_turn": profile.get("loss_every_turn", False), "seed": profile["seed"],
           "val_batches": profile.get("val_batches", -1),
           "val_loss": last_validation(run), "best_val_loss": (info.get("best") or {}).get("val_loss"),
           "cpu_minutes": None if cpu_seconds is None else round(cpu_seconds / 60, 2), "cpu_minutes_source": source}
    report = run.evaluation / "evaluation_report.json"
    tuned = read_json(report)["tuned"] if report.is_file() else None
    row.update({"test_f1": tuned and tuned["f1"]["mean"], "test_f1_low": tuned and tuned["f1"]["ci_low"],
                "test_f1_high": tuned and tuned["f1"]["ci_high"], "test_auc": tuned and tuned["auc"],
                "test_auc_low": tuned and tuned.get("auc_interval", {}).get("ci_low"),
                "test_auc_high": tuned and tuned.get("auc_interval", {}).get("ci_high"),
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


def pareto_front(rows: list[dict], key: str) -> list[dict]:
    """The rows no other row beats on both counts: higher `key` for no more CPU minutes."""
    shown = sorted((r for r in rows if r[key] is not None and r["cpu_minutes"] is not None), key=lambda r: (r["cpu_minutes"], -r[key]))
    front, best = [], float("-inf")
    for row in shown:
        if row[key] > best:
            front.append(row)
            best = row[key]
    return front


def study_figure(rows: list[dict], path: Path) -> Path:
    """Test F1 (95% interval), AUC and out-of-scope refusals of the evaluated recipes, and the validation loss of every
    recipe, against CPU minutes; hollow: estimated time. Names are written in the F1 panel, on its front (no cheaper
    recipe did better) and on the CPU runs. A recipe whose loss also counts the prompt (mask_prompt false), or that
    validated on part of the validation set (val_batches), has a validation loss on other tokens: left out of that panel."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.6), sharex=True)
    panels = ((axes[0][0], "test_f1", "F1 de tokens no teste (afinado, IC 95%)", COLOURS["test"]),
              (axes[0][1], "test_auc", "AUC no teste (afinado)", COLOURS["test"]),
              (axes[1][0], "refusals_out_of_scope", "recusas fora do âmbito (fração)", COLOURS["test"]),
              (axes[1][1], "val_loss", "perda de validação no fim (escala log.)", COLOURS["valid"]))
    named = {row["name"] for row in pareto_front(rows, "test_f1")} | {row["name"] for row in rows if row["device"] == "cpu"}
    for ax, key, label, colour in panels:
        shown = [r for r in rows if r[key] is not None and r["cpu_minutes"] is not None
                 and (key != "val_loss" or (r["mask_prompt"] and r["val_batches"] == -1))]
        for row in shown:
            hollow = row["cpu_minutes_source"] != "medido"
            if key == "test_f1":
                ax.errorbar(row["cpu_minutes"], row[key], yerr=[[row[key] - row["test_f1_low"]], [row["test_f1_high"] - row[key]]],
                            fmt="o", color=colour, mfc="white" if hollow else colour, ms=5, elinewidth=0.7, capsize=2)
            else:
                ax.plot(row["cpu_minutes"], row[key], "o", color=colour, mfc="white" if hollow else colour, ms=5)
            if key == "test_f1" and row["name"] in named:
                ax.annotate(row["name"], (row["cpu_minutes"], row[key]), fontsize=6.5, xytext=(4, -3), textcoords="offset points")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1][1].set_yscale("log")
    axes[1][1].yaxis.set_major_locator(FixedLocator([0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]))
    axes[1][1].yaxis.set_major_formatter(ScalarFormatter())
    axes[1][1].yaxis.set_minor_formatter(NullFormatter())
    fig.supxlabel("minutos de treino no CPU de 2 núcleos (cheio: medido; vazio: estimado da calibração)")
    fig.suptitle("Estudo da receita: qualidade contra custo de treino no CPU")
    return save(fig, path)


def other_changes(row: dict, default) -> str:
    """What a row changes from the `default` profile besides the columns of the table (dropout, schedule, loss…)."""
    changes = [f"dropout {pt(row['lora_dropout'], 2)}" if row["lora_dropout"] != default.lora.dropout else "",
               "perda também na pergunta" if not row["mask_prompt"] else "",
               "perda em todas as respostas" if row["loss_every_turn"] else "",
               f"taxa {row['lr_schedule']}" if row["lr_schedule"] != default.lr_schedule else "",
               f"aquecimento {row['warmup_steps']}" if row["warmup_steps"] != default.warmup_steps else "",
               f"acumulação {row['grad_accumulation']}" if row["grad_accumulation"] != default.grad_accumulation else ""]
    return ", ".join(change for change in changes if change) or "—"


def minutes_cell(row: dict) -> str:
    """A row's CPU minutes for a table: measured as they are, estimated with \\*, «—» without a calibration."""
    if row["cpu_minutes"] is None:
        return "—"
    return pt(row["cpu_minutes"], 0) + ("" if row["cpu_minutes_source"] == "medido" else "\\*")


def difference_cell(metrics: dict, key: str) -> str:
    """B − A with its interval and p for one metric of a saved comparison; «—» where the comparison lacks it (an AUC
    needs both classes among the common questions)."""
    return f"{pt_difference(metrics[key])}, {pt_p_value(metrics[key]['p_value'])}" if key in metrics else "—"


def results_table(rows: list[dict]) -> list[str]:
    """The evaluated recipes, by CPU minutes, as a Markdown table in pt-PT."""
    from farense_guide.config import load_profile

    default = load_profile("smollm2")
    header = ["run", "dispositivo", "lr", "épocas", "camadas", "rank", "escala", "batch", "outras mudanças", "semente",
              "F1 teste [IC 95%]", "AUC [IC 95%]", "recusas f.â.", "min CPU"]
    table = [header]
    for r in (r for r in rows if r["test_f1"] is not None):
        if r["test_auc_low"] is not None:
            auc = pt_mean_interval({"mean": r["test_auc"], "ci_low": r["test_auc_low"], "ci_high": r["test_auc_high"]})
        else:
            auc = pt(r["test_auc"], 3)
        table.append([f"`{r['name']}`", r["device"].upper(), pt_learning_rate(r["learning_rate"]), pt(r["epochs"], 2),
                      str(r["lora_layers"]), str(r["lora_rank"]), f"{r['lora_scale']:g}".replace(".", ","), str(r["batch_size"]),
                      other_changes(r, default), str(r["seed"]),
                      pt_mean_interval({"mean": r["test_f1"], "ci_low": r["test_f1_low"], "ci_high": r["test_f1_high"]}),
                      auc, pt(r["refusals_out_of_scope"], 2), minutes_cell(r)])
    return markdown_table(table)


def comparisons_table(folder: Path) -> list[str]:
    """Each saved paired comparison (comparisons/*.json, from `farense-guide compare --json`): B − A on F1, AUC and refusals."""
    table = [["A", "B", "perguntas", "F1: B − A [IC 95%]", "AUC: B − A [IC 95%]", "recusas f.â.: B − A"]]
    for path in sorted((folder / "comparisons").glob("*.json")):
        result = read_json(path)
        metrics = result["metrics"]
        cells = [difference_cell(metrics, key) for key in ("f1", "auc")]
        refusals = metrics.get("refusal_rate_out_of_scope")
        table.append([f"`{Path(result['first']).name}`", f"`{Path(result['second']).name}`", str(result["items"]), *cells,
                      f"{pt_signed(refusals['difference'], 2)}, {pt_p_value(refusals['p_value'])}" if refusals else "—"])
    return markdown_table(table) if len(table) > 1 else []


def study_markdown(rows: list[dict], folder: Path) -> str:
    lines = ["# O estudo da receita: os números", "",
             "Gerado por `farense-guide study` a partir das pastas dos runs; o texto que os lê está em `README.md`.", "",
             "## Os runs avaliados nas perguntas de teste, por minutos de treino no CPU", "",
             "\\* estimado: passos × segundos por passo medidos no CPU (`calibration/`); sem \\*, medido no CPU; — sem "
             "calibração para essa forma (camadas, rank, batch). «Outras mudanças»: o que o run muda no perfil `smollm2` "
             "além das colunas.", "",
             *results_table(rows)]
    comparisons = comparisons_table(folder)
    if comparisons:
        lines += ["", "## As comparações emparelhadas (`comparisons/`)", "",
                  "B − A nas mesmas perguntas, com o intervalo bootstrap emparelhado e o seu p (as recusas com o McNemar exato).", "",
                  *comparisons]
    return "\n".join(lines) + "\n"


def build_study(folder: Path, others: list[Path] = ()) -> list[Path]:
    """study.json, study.csv, study.md and study.png in `folder`, from its run folders and the `others`."""
    import pandas as pd

    rows = study_rows(folder, others)
    written = [write_json(folder / "study.json", {"columns": list(COLUMNS), "rows": rows})]
    written.append(safe_write(folder / "study.csv", pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False)))
    written.append(safe_write(folder / "study.md", study_markdown(rows, folder)))
    written.append(study_figure(rows, folder / "study.png"))
    return written
