"""One evaluation variant before and after: an earlier commit's evaluation code against this one.

Both score the same variant of a run (default: the base model of runs/reference, whose answers run to
the token limit) on the same questions, with the same BLAS, each in a child process of this one run:
the earlier code is `git archive`d from its commit into a temporary folder. Printed: the time of each,
the ratio, how many answers are the same, and the largest difference between the two summaries.

    python bench/bench_evaluate.py [--run runs/reference] [--variant base] [--limit N] [--before d0a1494] [--save]

--save writes the new code's result as the run's saved variant (evaluation/variants/<variant>.json), as
`farense-guide evaluate` would, so that runs on the same model, data and code reuse the base's result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "d0a1494"  # the last commit whose evaluation ran every candidate's whole prompt


def worker(code: Path, run_path: Path, variant: str, limit: int | None, max_tokens: int, out: Path, save: bool) -> None:
    # The project is installed in editable mode, whose import hook comes before sys.path: take it out.
    sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in getattr(finder, "__module__", "")]
    sys.path.insert(0, str(code))
    from farense_guide.runs import RunFolder
    from farense_guide.steps import evaluate

    assert Path(evaluate.__file__).is_relative_to(code), evaluate.__file__
    run = RunFolder(run_path)
    info = run.read_info()
    test, valid = evaluate.evaluation_items(info, limit)
    adapter = dict(evaluate.variants_of(run))[variant]
    start = time.perf_counter()
    try:
        from farense_guide.scoring import score_variant
    except ImportError:  # before scoring.py, score_variant lived in evaluate.py
        score_variant = evaluate.score_variant
    result, answers = score_variant(info, adapter, test, valid, max_tokens, lambda done: None)
    seconds = time.perf_counter() - start
    if save:  # only ever with this commit's code
        settings = evaluate.variant_settings(info, Path(info.profile.data), limit, max_tokens)
        evaluate.save_variant(run.evaluated_variant(variant), evaluate.variant_key(settings, adapter), result, answers)
    out.write_text(json.dumps({"seconds": seconds, "result": result, "answers": answers}))


def measure(code: Path, args: argparse.Namespace, out: Path, save: bool) -> dict:
    command = [sys.executable, __file__, "--worker", str(code), "--run", str(args.run), "--variant", args.variant,
               "--max-tokens", str(args.max_tokens), "--out", str(out)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if save:
        command.append("--save")
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    return json.loads(out.read_text())


# Shares whose interval became Wilson's (scoring.proportion) after d0a1494's bootstrap: their bounds differ by method.
WILSON_BOUNDS = {f".{share}.{bound}" for share in ("exact_match", "top1_accuracy", "refusal_rate_out_of_scope", "refusal_rate_facts")
                 for bound in ("ci_low", "ci_high")}


def largest_difference(before, after, path: str = "") -> tuple[float, str]:
    """The largest difference between two nested summaries' numbers, and where: absolute, relative above 1 (perplexity)."""
    if isinstance(before, dict):
        keys = [key for key in before if f"{path}.{key}" not in WILSON_BOUNDS]
        return max((largest_difference(before[key], after[key], f"{path}.{key}") for key in keys), default=(0.0, path))
    if isinstance(before, list):
        return max((largest_difference(b, a, f"{path}[{i}]") for i, (b, a) in enumerate(zip(before, after))), default=(0.0, path))
    if isinstance(before, (int, float)) and before is not None and after is not None:
        return abs(before - after) / max(1.0, abs(before)), path
    return 0.0, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "reference")
    parser.add_argument("--variant", default="base")
    parser.add_argument("--limit", type=int, help="the first N test and validation questions (default: all)")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--before", default=BEFORE, help="the commit whose evaluation code is measured against this one")
    parser.add_argument("--save", action="store_true", help="save the new code's result as the run's variant")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.run.resolve(), args.variant, args.limit, args.max_tokens, args.out, args.save)

    from farense_guide import blas

    os.environ.update(blas.blas_env())  # as the CLI runs: the fast BLAS where there is one
    with tempfile.TemporaryDirectory() as folder:
        old_code = Path(folder) / "before"
        archive = subprocess.run(["git", "archive", args.before, "farense_guide"], cwd=ROOT, check=True, capture_output=True).stdout
        old_code.mkdir()
        (Path(folder) / "code.tar").write_bytes(archive)
        with tarfile.open(Path(folder) / "code.tar") as tar:
            tar.extractall(old_code, filter="data")
        before = measure(old_code, args, Path(folder) / "before.json", save=False)
        after = measure(ROOT, args, Path(folder) / "after.json", save=args.save)
    same = sum(a == b for a, b in zip(before["answers"], after["answers"]))
    difference, where = largest_difference(before["result"]["summary"], after["result"]["summary"])
    rows = len(before["result"]["rows"])
    print(f"Avaliação de uma variante ({args.variant} de {args.run.name}, {rows} perguntas de teste e as de validação, "
          f"até {args.max_tokens} tokens), na mesma execução, BLAS {blas.blas_label()}:")
    print(f"  antes ({args.before}): {before['seconds']:.0f} s · agora: {after['seconds']:.0f} s · razão {before['seconds'] / after['seconds']:.2f}x")
    print(f"  respostas iguais: {same}/{rows} · maior diferença entre os resumos: {difference:.2e} ({where.lstrip('.')})")


if __name__ == "__main__":
    main()
