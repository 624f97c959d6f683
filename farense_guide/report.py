"""Figures and Markdown tables of a run, generated from its JSON so no number is typed by hand.

runs/<name>/figures/*.png, runs/<name>/tables/*.md and runs/<name>/evaluation/EVALUATION_REPORT.md.
A stamp of the inputs (and of this code) skips the work when nothing changed. Text that comes from the run
rather than from numbers (run, profile and model names) goes in through `markdown_cell`.
"""

from __future__ import annotations

from pathlib import Path

from farense_guide import plots
from farense_guide.data.output import markdown_cell
from farense_guide.paired import ALPHA
from farense_guide.pt_format import pt, pt_difference, pt_mean_interval, pt_p_value
from farense_guide.runs import RunFolder, RunInfo, Stamp, read_json, safe_write

METRIC_ROWS = [
    ("exact_match", "exact match"), ("precision", "precisão (tokens)"), ("recall", "recall (tokens)"), ("f1", "F1 (tokens)"),
    ("rouge_l", "ROUGE-L"), ("top1_accuracy", "top-1 (verosimilhança)"), ("refusal_rate_out_of_scope", "recusas fora do âmbito"),
]


def number(value, digits: int = 3) -> str:
    return pt(value, digits)


def with_interval(interval: dict) -> str:
    if interval.get("mean") is None:
        return "—"
    return pt_mean_interval(interval)


def paired_cells(difference: dict | None) -> str:
    """«afinado − base» and «teste» cells of a metric: the paired difference, bold when p < alpha, and the test's p."""
    if not difference:
        return "— | —"
    text = pt_difference(difference)
    return f"{'**' + text + '**' if difference['significant'] else text} | {difference['test']}, {pt_p_value(difference['p_value'])}"


def evaluation_table(report: dict) -> str:
    compared = report.get("paired", {}).get("metrics", {})  # evaluations before the paired comparison lack it
    rows = ["| métrica | modelo base | afinado (LoRA) | afinado − base | teste |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {label} | {with_interval(report['base'][key])} | {with_interval(report['tuned'][key])} | {paired_cells(compared.get(key))} |"
             for key, label in METRIC_ROWS]
    auc = {variant: with_interval(report[variant]["auc_interval"]) if "auc_interval" in report[variant] else number(report[variant]["auc"])
           for variant in ("base", "tuned")}  # evaluations made before the AUC interval existed show the AUC alone
    rows.append(f"| AUC (verosimilhança) | {auc['base']} | {auc['tuned']} | {paired_cells(compared.get('auc'))} |")
    rows.append(f"| perplexidade das respostas de referência | {number(report['base']['perplexity'], 2)} | "
                f"{number(report['tuned']['perplexity'], 2)} | — | — |")
    for key, label in (("precision", "precisão"), ("recall", "recall"), ("f1", "F1")):
        rows.append(f"| {label} da matriz de confusão | {number(report['base']['confusion'][key])} | "
                    f"{number(report['tuned']['confusion'][key])} | — | — |")
    note = (f"\n{report['items']} perguntas de teste ({report['out_of_scope_items']} fora do âmbito). Entre parênteses retos, "
            "intervalos de confiança de 95%: por bootstrap para as médias, de Wilson para as proporções (exact match, top-1, "
            "recusas). «Afinado − base» é a diferença emparelhada, nas mesmas perguntas, com o seu intervalo por bootstrap "
            f"emparelhado; o teste dá o valor p (McNemar exato nas métricas de sim/não); a negrito, as diferenças com p < {pt(ALPHA, 2)}.\n")
    return "\n".join(rows) + "\n" + note


def epochs_table(report: dict) -> str:
    rows = ["| época | F1 | ROUGE-L | top-1 | AUC |", "| --- | --- | --- | --- | --- |"]
    points = [("0 (base)", report["base"])] + [(e, report["epochs"][e]) for e in sorted(report.get("epochs", {}), key=int)]
    for label, s in points:
        rows.append(f"| {label} | {number(s['f1']['mean'])} | {number(s['rouge_l']['mean'])} | {number(s['top1_accuracy']['mean'])} | "
                    f"{number(s['auc'])} |")
    return "\n".join(rows) + "\n"


def training_table(info: RunInfo, report: dict | None) -> str:
    iterations, best = info.iterations, info.best
    steps_done = "—" if info.steps_done is None else info.steps_done
    tokens_per_second = info.throughput.tokens_per_second if info.throughput else None
    rows = ["| | |", "| --- | --- |",
            f"| perfil | {markdown_cell(info.profile.name)} ({markdown_cell(info.profile.model)}) |",
            f"| método | {markdown_cell(info.backend.method)} · {markdown_cell(info.backend.device)} |",
            f"| passos | {steps_done} de {iterations.total_steps} "
            f"({iterations.steps_per_epoch} por época, batch {iterations.batch_size})"
            + (" · run encurtado" if iterations.shortened else "") + " |",
            f"| tokens/s (média do treino) | {number(tokens_per_second, 1)} |",
            f"| memória de pico | {number(info.memory.get('peak_gb'), 2)} GB |",
            f"| melhor perda de validação | {number(best.val_loss if best else None)} (passo {best.step if best else '—'}) |"]
    gap = (report or {}).get("loss_gap") or {}
    if gap:
        rows.append(f"| perda de treino / validação no fim | {number(gap['train_loss'])} / {number(gap['val_loss'])} "
                    f"(diferença {number(gap['gap'])}) |")
    return "\n".join(rows) + "\n"


def data_histogram(info: RunInfo, path: Path) -> Path | None:
    """Tokens per example of the run's training data, with the run's tokenizer and max_seq_length."""
    from farense_guide.data.validate import validate
    from farense_guide.models import load_tokenizer

    data = Path(info.profile.data)
    if not (data / "train.jsonl").exists():
        return None
    result = validate(data, load_tokenizer(info.profile.model))
    lengths = {name: [e.tokens for e in r.examples] for name, r in result.files.items() if r.examples}
    return plots.token_length_histogram(lengths, path, info.profile.max_seq_length)


def evaluation_markdown(info: RunInfo, report: dict, figures: list[Path]) -> str:
    """EVALUATION_REPORT.md: the three tables and every figure, linked from evaluation/."""
    return (f"# Avaliação do run {markdown_cell(info.name)}\n\n## Treino\n\n{training_table(info, report)}\n"
            f"## Base contra afinado\n\n{evaluation_table(report)}\n## Por época\n\n{epochs_table(report)}\n"
            "## Figuras\n\n" + "".join(f"![{p.stem}](../figures/{p.name})\n\n" for p in figures))


def training_outputs(run: RunFolder, info: RunInfo, report: dict | None) -> list[Path]:
    """The figures of the training (loss, throughput, token lengths) and tables/training.md."""
    metrics = run.read_metrics()
    written = [
        plots.loss_curves(metrics, info.iterations.steps_per_epoch, run.figures / "loss_curves.png"),
        plots.throughput_and_memory(metrics, run.figures / "throughput_memory.png"),
    ]
    histogram = data_histogram(info, run.figures / "token_lengths.png")
    if histogram:
        written.append(histogram)
    written.append(safe_write(run.tables / "training.md", training_table(info, report)))
    return written


def evaluation_outputs(run: RunFolder, info: RunInfo, report: dict, training: list[Path]) -> list[Path]:
    """The evaluation's figures and tables, and EVALUATION_REPORT.md with every figure: the training's, then these."""
    written = [
        plots.metrics_overview(report, run.figures / "metrics_overview.png"),
        plots.epoch_analysis(report, run.figures / "epoch_analysis.png"),
        plots.confusion_matrices(report, run.figures / "confusion_matrix.png"),
        plots.roc_curves(report, run.figures / "roc_curve.png"),
    ]
    if "paired" in report:
        written.append(plots.paired_differences(report, run.figures / "paired_differences.png"))
    figures = [p for p in training + written if p.suffix == ".png"]
    written.append(safe_write(run.tables / "evaluation.md", evaluation_table(report)))
    written.append(safe_write(run.tables / "epochs.md", epochs_table(report)))
    written.append(safe_write(run.evaluation_markdown, evaluation_markdown(info, report, figures)))
    return written


def report_stamp(run: RunFolder) -> Stamp:
    """The run's JSON and this code. The stamp names the paths: files are resolved, code goes in as text."""
    return Stamp(run.report_stamp, [run.run_json, run.metrics, run.evaluation_report, Path(__file__), Path(plots.__file__)])


def build_report(run_path: Path, force: bool = False) -> list[Path]:
    """Write figures, tables and EVALUATION_REPORT.md; returns what was written ([] when up to date)."""
    run = RunFolder(run_path)
    stamp = report_stamp(run)
    if not force and stamp.is_current():
        return []
    info = run.read_info()
    report = read_json(run.evaluation_report) if run.evaluation_report.exists() else None
    written = training_outputs(run, info, report)
    if report:
        written += evaluation_outputs(run, info, report, written)
    stamp.record()
    return written
