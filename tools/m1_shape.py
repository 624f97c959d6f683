"""The m1-16gb profile's memory, measured on a model of its shape (tools/gpu_m1_shape.sh runs this on a GPU).

    python tools/m1_shape.py model FOLDER --tokenizer SMOLLM2_FOLDER   random 4-bit weights of the profile's model_shape
    python tools/m1_shape.py data FOLDER                               the Farense data, every answer longer than 512 tokens
    python tools/m1_shape.py record RUN [RUN ...] --output FILE       estimate against measured peak, per run

The weights are random, in float16 with 4-bit groups of 64 as mlx-community's Mistral-7B-Instruct-v0.3-4bit:
memory and speed do not depend on their values. The vocabulary is SmolLM2's
(49 152 tokens, against Mistral's 32 768), because its tokenizer is the one here and the data's token
ids must exist in the embedding; the estimate is made for the same shape, so estimate and measurement
compare like with like. Every answer of the data is made longer than the profile's 512 tokens, so that
every batch is 2 x 512, the profile's worst case, which is what the estimate is for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from farense_guide.config import load_profile  # noqa: E402
from farense_guide.runs import RunFolder, write_json  # noqa: E402

PROFILE = "m1-16gb"
# What Mistral-7B-Instruct-v0.3's config.json has beyond the profile's model_shape.
MISTRAL_EXTRA = {"model_type": "llama", "rms_norm_eps": 1e-5, "rope_theta": 1_000_000.0, "max_position_embeddings": 32768}


def build_model(folder: Path, tokenizer: Path) -> None:
    from farense_guide.models import copy_tokenizer_files
    from farense_guide.tiny import build_random_model

    shape = load_profile(PROFILE).model_shape
    quantization = shape["quantization"]
    folder.mkdir(parents=True, exist_ok=True)
    # float16 like mlx-community's 4-bit Mistral (its scales and unquantized weights), so the model computes in float16
    build_random_model(folder, {**shape, **MISTRAL_EXTRA}, tokenizer, quantization["bits"], quantization["group_size"], seed=0,
                       dtype="float16")
    copy_tokenizer_files(tokenizer, folder)


def long_answer(records: list[dict], start: int, words: int = 300) -> str:
    """Answers of the data set joined from `start` on until they hold `words` words (well over 512 tokens)."""
    parts, count, index = [], 0, start
    while count < words:
        answer = records[index % len(records)]["messages"][-1]["content"]
        parts.append(answer)
        count += len(answer.split())
        index += 1
    return " ".join(parts)


def build_data(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        records = [json.loads(line) for line in (ROOT / "data" / f"{split}.jsonl").read_text().splitlines()]
        lines = []
        for index, record in enumerate(records):
            messages = record["messages"][:-1] + [{"role": "assistant", "content": long_answer(records, index)}]
            lines.append(json.dumps({"messages": messages}, ensure_ascii=False))
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")


def steady_tokens_per_second(run: RunFolder) -> float | None:
    """Tokens/s after the first report window: the first steps also compile the GPU kernels, which a long run pays once."""
    reports = [m for m in run.read_metrics() if m["type"] == "train"]
    if len(reports) < 2:
        return None
    first, last = reports[0], reports[-1]
    return (last["trained_tokens"] - first["trained_tokens"]) / (last["elapsed_s"] - first["elapsed_s"])


def record(runs: list[Path], output: Path) -> None:
    """Each run's settings, estimate (run.json, made before the weights loaded) and measured peak, and their ratio."""
    rows = []
    for path in runs:
        info = RunFolder(path).read_info()
        estimate, peak = info.memory["estimate"], info.memory.get("peak_gb")
        estimate_gb = estimate["bytes"]["total estimado"] / 1e9
        rows.append({
            "run": path.name, "grad_checkpoint": info.profile.grad_checkpoint, "batch_size": info.profile.batch_size,
            "max_seq_length": info.profile.max_seq_length, "grad_accumulation": info.profile.grad_accumulation,
            "lora": {"rank": info.profile.lora.rank, "layers": info.profile.lora.num_layers, "dropout": info.profile.lora.dropout},
            "memory_limit_gb": info.profile.memory_limit_gb, "estimate": estimate, "estimate_gb": estimate_gb, "peak_gb": peak,
            "estimate_over_peak": estimate_gb / peak if peak else None,
            "tokens_per_second": info.throughput.tokens_per_second if info.throughput else None,
            "steady_tokens_per_second": steady_tokens_per_second(RunFolder(path)),
            "steps": info.steps_done, "machine": info.machine, "backend": info.backend.method,
        })
    write_json(output, {"profile": PROFILE, "vocabulary": "SmolLM2 (49 152), not Mistral's 32 768", "runs": rows})
    for row in rows:
        print(f"{row['run']}: checkpointing {row['grad_checkpoint']}, estimate {row['estimate_gb']:.2f} GB, "
              f"peak {row['peak_gb']:.2f} GB, ratio {row['estimate_over_peak']:.3f}, {row['tokens_per_second']:.0f} tokens/s "
              f"({row['steady_tokens_per_second']:.0f} after the first window)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    model = actions.add_parser("model")
    model.add_argument("folder", type=Path)
    model.add_argument("--tokenizer", type=Path, required=True, help="a model folder with SmolLM2's tokenizer and config.json")
    data = actions.add_parser("data")
    data.add_argument("folder", type=Path)
    rec = actions.add_parser("record")
    rec.add_argument("runs", type=Path, nargs="+")
    rec.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.action == "model":
        build_model(args.folder, args.tokenizer)
    elif args.action == "data":
        build_data(args.folder)
    else:
        record(args.runs, args.output)


if __name__ == "__main__":
    main()
