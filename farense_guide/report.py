"""Figures and Markdown tables of a run, generated from its JSON so no number is typed by hand.

runs/<name>/figures/*.png, runs/<name>/tables/*.md and runs/<name>/evaluation/EVALUATION_REPORT.md.
A stamp with the hash of the inputs (and of this code) skips the work when nothing changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from farense_guide import plots
from farense_guide.pt_format import pt
from farense_guide.runs import RunFolder, read_json

STAMP = ".report-stamp"
METRIC_ROWS = [
    ("exact_match", "exact match"), ("precision", "precisão (tokens)"), ("recall", "recall (tokens)"), ("f1", "F1 (tokens)"),
    ("rouge_l", "ROUGE-L"), ("top1_accuracy", "top-1 (verosimilhança)"), ("refusal_rate_out_of_scope", "recusas fora do âmbito"),
]


def number(value, digits: int = 3) -> str:
    return pt(value, digits)


def with_interval(interval: dict) -> str:
    if interval.get("mean") is None:
        return "—"
    return f"{number(interval['mean'])} [{number(interval['ci_low'])}; {number(interval['ci_high'])}]"


def evaluation_table(report: dict) -> str:
    rows = ["| métrica | modelo base | afinado (LoRA) |", "| --- | --- | --- |"]
    rows += [f"| {label} | {with_interval(report['base'][key])} | {with_interval(report['tuned'][key])} |" for key, label in METRIC_ROWS]
    auc = {variant: with_interval(report[variant]["auc_interval"]) if "auc_interval" in report[variant] else number(report[variant]["auc"])
           for variant in ("base", "tuned")}  # evaluations made before the AUC interval existed show the AUC alone
    rows.append(f"| AUC (verosimilhança) | {auc['base']} | {auc['tuned']} |")
    rows.append(f"| perplexidade das respostas de referência | {number(report['base']['perplexity'], 2)} | "
                f"{number(report['tuned']['perplexity'], 2)} |")
    for key, label in (("precision", "precisão"), ("recall", "recall"), ("f1", "F1")):
        rows.append(f"| {label} da matriz de confusão | {number(report['base']['confusion'][key])} | "
                    f"{number(report['tuned']['confusion'][key])} |")
    note = (f"\n{report['items']} perguntas de teste ({report['out_of_scope_items']} fora do âmbito); entre parênteses retos, "
            "o intervalo de confiança de 95% por bootstrap.\n")
    return "\n".join(rows) + "\n" + note


def epochs_table(report: dict) -> str:
    rows = ["| época | F1 | ROUGE-L | top-1 | AUC |", "| --- | --- | --- | --- | --- |"]
    points = [("0 (base)", report["base"])] + [(e, report["epochs"][e]) for e in sorted(report.get("epochs", {}), key=int)]
    for label, s in points:
        rows.append(f"| {label} | {number(s['f1']['mean'])} | {number(s['rouge_l']['mean'])} | {number(s['top1_accuracy']['mean'])} | "
                    f"{number(s['auc'])} |")
    return "\n".join(rows) + "\n"


def training_table(info: dict, report: dict | None) -> str:
    iterations, throughput = info["iterations"], info.get("throughput", {})
    rows = ["| | |", "| --- | --- |",
            f"| perfil | {info['profile']['name']} ({info['profile']['model']}) |",
            f"| método | {info['backend']['method']} · {info['backend']['device']} |",
            f"| passos | {info.get('steps_done', '—')} de {iterations['total_steps']} "
            f"({iterations['steps_per_epoch']} por época, batch {iterations['batch_size']})"
            + (" · run encurtado" if iterations.get("shortened") else "") + " |",
            f"| tokens/s (média do treino) | {number(throughput.get('tokens_per_second'), 1)} |",
            f"| memória de pico | {number(info.get('memory', {}).get('peak_gb'), 2)} GB |",
            f"| melhor perda de validação | {number(info.get('best', {}).get('val_loss'))} (passo {info.get('best', {}).get('step', '—')}) |"]
    gap = (report or {}).get("loss_gap") or {}
    if gap:
        rows.append(f"| perda de treino / validação no fim | {number(gap['train_loss'])} / {number(gap['val_loss'])} "
                    f"(diferença {number(gap['gap'])}) |")
    return "\n".join(rows) + "\n"


def data_histogram(info: dict, path: Path) -> Path | None:
    """Tokens per example of the run's training data, with the run's tokenizer and max_seq_length."""
    from farense_guide.data.validate import validate
    from farense_guide.models import load_tokenizer

    data = Path(info["profile"]["data"])
    if not (data / "train.jsonl").exists():
        return None
    result = validate(data, load_tokenizer(info["profile"]["model"]))
    lengths = {name: [e.tokens for e in r.examples] for name, r in result.files.items() if r.examples}
    return plots.token_length_histogram(lengths, path, info["profile"]["max_seq_length"])


def inputs_hash(run: RunFolder) -> str:
    digest = hashlib.sha256()
    for path in (run.run_json, run.metrics, run.path / "evaluation" / "evaluation_report.json",
                 Path(__file__), Path(plots.__file__)):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def build_report(run_path: Path, force: bool = False) -> list[Path]:
    """Write figures, tables and EVALUATION_REPORT.md; returns what was written ([] when up to date)."""
    run = RunFolder(run_path)
    stamp = run.path / STAMP
    key = inputs_hash(run)
    if not force and stamp.exists() and stamp.read_text() == key:
        return []
    info = run.read_run()
    metrics = run.read_metrics()
    evaluation_path = run.path / "evaluation" / "evaluation_report.json"
    report = read_json(evaluation_path) if evaluation_path.exists() else None
    figures, tables = run.path / "figures", run.path / "tables"
    written = [
        plots.loss_curves(metrics, info["iterations"]["steps_per_epoch"], figures / "loss_curves.png"),
        plots.throughput_and_memory(metrics, figures / "throughput_memory.png"),
    ]
    histogram = data_histogram(info, figures / "token_lengths.png")
    if histogram:
        written.append(histogram)
    tables.mkdir(parents=True, exist_ok=True)
    written.append(tables / "training.md")
    (tables / "training.md").write_text(training_table(info, report), encoding="utf-8")
    if report:
        written += [
            plots.metrics_overview(report, figures / "metrics_overview.png"),
            plots.epoch_analysis(report, figures / "epoch_analysis.png"),
            plots.confusion_matrices(report, figures / "confusion_matrix.png"),
            plots.roc_curves(report, figures / "roc_curve.png"),
        ]
        for name, text in (("evaluation.md", evaluation_table(report)), ("epochs.md", epochs_table(report))):
            (tables / name).write_text(text, encoding="utf-8")
            written.append(tables / name)
        markdown = run.path / "evaluation" / "EVALUATION_REPORT.md"
        markdown.write_text(
            f"# Avaliação do run {info['name']}\n\n## Treino\n\n{training_table(info, report)}\n"
            f"## Base contra afinado\n\n{evaluation_table(report)}\n## Por época\n\n{epochs_table(report)}\n"
            "## Figuras\n\n" + "".join(f"![{p.stem}](../figures/{p.name})\n\n" for p in written if p.suffix == ".png"),
            encoding="utf-8",
        )
        written.append(markdown)
    stamp.write_text(key)
    return written
