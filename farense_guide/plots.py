"""Figures in one style: matplotlib's Agg backend, pt-PT labels, readable on screen and in print at 150 dpi."""

from __future__ import annotations

from pathlib import Path

from farense_guide.runs import safe_write

DPI = 150
COLOURS = {"train": "#1f1f1f", "valid": "#2a7ab9", "test": "#d9822b", "base": "#8c8c8c", "tuned": "#1f1f1f"}
SPLIT_LABELS = {"train": "treino", "valid": "validação", "test": "teste"}


def pyplot():
    """matplotlib.pyplot with the Agg backend and the guide's style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "font.family": "DejaVu Sans",
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "svg.hashsalt": "farense",  # stable output for content hashes
        }
    )
    return plt


def save(fig, path: Path) -> Path:
    """Write the figure through safe_write (its temporary keeps the suffix, so the format), then close it."""
    import matplotlib.pyplot as plt

    try:
        return safe_write(path, lambda tmp: fig.savefig(tmp, bbox_inches="tight", metadata={"Software": None}))
    finally:
        plt.close(fig)


def token_length_histogram(lengths: dict[str, list[int]], path: Path, max_seq_length: int | None = None) -> Path:
    """Histogram of tokens per example, one series per split."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    every = [n for values in lengths.values() for n in values]
    bins = min(40, max(10, len(set(every))))
    for index, (name, values) in enumerate(lengths.items()):
        style = {"histtype": "stepfilled", "alpha": 0.35} if index == 0 else {"histtype": "step", "linewidth": 1.8}
        ax.hist(values, bins=bins, range=(min(every), max(every)), label=f"{SPLIT_LABELS.get(name, name)} ({len(values)})",
                color=COLOURS.get(name), **style)
    if max_seq_length and max_seq_length <= max(every) * 1.5:
        ax.axvline(max_seq_length, color="#b22222", linestyle="--", label=f"max_seq_length = {max_seq_length}")
    ax.set_xlabel("tokens por exemplo (molde de chat aplicado)")
    ax.set_ylabel("exemplos")
    ax.set_title("Comprimento dos exemplos em tokens")
    ax.legend()
    return save(fig, path)


METRIC_LABELS = {
    "exact_match": "exact match", "precision": "precisão", "recall": "recall", "f1": "F1", "rouge_l": "ROUGE-L",
    "top1_accuracy": "top-1", "refusal_rate_out_of_scope": "recusas fora\ndo âmbito",
}
VARIANT_LABELS = {"base": "modelo base", "tuned": "afinado (LoRA)"}


def loss_curves(metrics: list[dict], steps_per_epoch: int, path: Path) -> Path:
    """Training and validation loss against the step, with a dashed line at each epoch's end."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    train = [m for m in metrics if m["type"] == "train"]
    valid = [m for m in metrics if m["type"] == "valid"]
    ax.plot([m["step"] for m in train], [m["train_loss"] for m in train], color=COLOURS["train"], label="treino")
    ax.plot([m["step"] for m in valid], [m["val_loss"] for m in valid], "o-", color=COLOURS["valid"], label="validação")
    last = max([m["step"] for m in metrics] + [1])
    for epoch_end in range(steps_per_epoch, last + 1, steps_per_epoch):
        ax.axvline(epoch_end, color="#999999", linestyle="--", linewidth=0.8)
        ax.text(epoch_end, ax.get_ylim()[1], f" época {epoch_end // steps_per_epoch}", va="top", fontsize=8, color="#666666")
    ax.set_xlabel("passo")
    ax.set_ylabel("perda (entropia cruzada por token)")
    ax.set_title("Perda de treino e de validação")
    ax.legend()
    return save(fig, path)


def metrics_overview(report: dict, path: Path) -> Path:
    """Base against fine-tuned, every generative metric with its bootstrap 95% interval."""
    plt = pyplot()
    import numpy as np

    names = [n for n in METRIC_LABELS if report["base"].get(n, {}).get("mean") is not None]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(names))
    for offset, variant in ((-0.2, "base"), (0.2, "tuned")):
        values = [report[variant][n] for n in names]
        means = [v["mean"] for v in values]
        # max(0, …): a Wilson bound can sit a rounding error past the mean (2.8e-17 above a rate of 0), and matplotlib
        # refuses a negative error bar
        errors = [[max(0.0, v["mean"] - v["ci_low"]) for v in values], [max(0.0, v["ci_high"] - v["mean"]) for v in values]]
        ax.bar(x + offset, means, width=0.4, yerr=errors, capsize=3, color=COLOURS[variant], label=VARIANT_LABELS[variant])
    ax.set_xticks(x, [METRIC_LABELS[n] for n in names])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("média no teste (IC 95%)")
    ax.set_title(f"Modelo base contra afinado ({report['items']} perguntas de teste)")
    ax.legend()
    return save(fig, path)


def paired_differences(report: dict, path: Path) -> Path:
    """Tuned minus base on the same questions, each metric with its paired 95% interval; the line at zero is "no
    difference", and a metric whose difference has p < alpha is drawn solid."""
    plt = pyplot()
    compared = report["paired"]["metrics"]
    labels = {**METRIC_LABELS, "auc": "AUC", "refusal_rate_out_of_scope": "recusas fora do âmbito"}
    names = [name for name in labels if name in compared][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    for y, name in enumerate(names):
        d = compared[name]
        ax.errorbar(d["difference"], y, xerr=[[max(0.0, d["difference"] - d["ci_low"])], [max(0.0, d["ci_high"] - d["difference"])]], fmt="o", capsize=3,
                    color=COLOURS["tuned"] if d["significant"] else COLOURS["base"], mfc=COLOURS["tuned"] if d["significant"] else "white")
    ax.axvline(0, color="#b22222", linewidth=1)
    ax.set_yticks(range(len(names)), [labels[name].replace("\n", " ") for name in names])
    ax.set_xlabel("afinado − base, nas mesmas perguntas (IC 95% emparelhado)")
    ax.set_title(f"Diferença emparelhada ({report['paired']['items']} perguntas; cheio: p < {report['paired']['alpha']:g})".replace(".", ","))
    return save(fig, path)


def epoch_analysis(report: dict, path: Path) -> Path:
    """F1, ROUGE-L, top-1 and AUC after each epoch; epoch 0 is the base model."""
    plt = pyplot()
    epochs = sorted(report.get("epochs", {}), key=int)
    points = [("0", report["base"])] + [(e, report["epochs"][e]) for e in epochs]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = [int(e) for e, _ in points]
    for name, colour in (("f1", "#1f1f1f"), ("rouge_l", "#2a7ab9"), ("top1_accuracy", "#d9822b")):
        ax.plot(xs, [s[name]["mean"] for _, s in points], "o-", color=colour, label=METRIC_LABELS[name])
    ax.plot(xs, [s["auc"] for _, s in points], "s--", color="#6a3d9a", label="AUC")
    ax.set_xticks(xs)
    ax.set_xlabel("época (0 = modelo base)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Métricas de teste por época")
    ax.legend()
    return save(fig, path)


def confusion_matrices(report: dict, path: Path) -> Path:
    """Counts of true/wrong answers accepted or rejected at the validation threshold, base and tuned."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), constrained_layout=True)
    for index, (ax, variant) in enumerate(zip(axes, ("base", "tuned"))):
        c = report[variant]["confusion"]
        grid = [[c["tp"], c["fn"]], [c["fp"], c["tn"]]]
        ax.imshow(grid, cmap="Greys", vmin=0, vmax=max(max(row) for row in grid) * 1.6)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=13)
        ax.set_xticks([0, 1], ["aceite", "rejeitada"])
        ax.set_yticks([0, 1], ["resposta certa", "resposta de\noutra pergunta"] if index == 0 else ["", ""])
        ax.set_title(f"{VARIANT_LABELS[variant]}\nF1 {c['f1']:.3f} · limiar {report[variant]['threshold']:.2f}", fontsize=10)
        ax.grid(False)
    fig.suptitle("Matriz de confusão (verosimilhança, limiar escolhido na validação)", fontsize=11)
    return save(fig, path)


def roc_curves(report: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for variant in ("base", "tuned"):
        roc = report[variant]["roc"]
        ax.plot(roc["fpr"], roc["tpr"], color=COLOURS[variant], label=f"{VARIANT_LABELS[variant]} (AUC {report[variant]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="#999999", label="acaso")
    ax.set_xlabel("taxa de falsos positivos")
    ax.set_ylabel("taxa de verdadeiros positivos")
    ax.set_title("Curva ROC: resposta certa contra respostas de outras perguntas", fontsize=10)
    ax.legend(loc="lower right")
    return save(fig, path)


def throughput_and_memory(metrics: list[dict], path: Path) -> Path:
    plt = pyplot()
    train = [m for m in metrics if m["type"] == "train"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.6), sharex=True)
    steps = [m["step"] for m in train]
    top.plot(steps, [m["tokens_per_second"] for m in train], color=COLOURS["train"])
    top.set_ylabel("tokens/s")
    top.set_title("Débito e memória ao longo do treino")
    bottom.plot(steps, [m["peak_memory_gb"] for m in train], color=COLOURS["valid"])
    bottom.set_ylabel("memória de pico (GB)")
    bottom.set_xlabel("passo")
    return save(fig, path)
