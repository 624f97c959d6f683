"""Figures in one style: matplotlib's Agg backend, pt-PT labels, readable on screen and in print at 150 dpi."""

from __future__ import annotations

from pathlib import Path

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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


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
    ax.set_xlabel("tokens por exemplo (modelo de chat aplicado)")
    ax.set_ylabel("exemplos")
    ax.set_title("Comprimento dos exemplos em tokens")
    ax.legend()
    return save(fig, path)
