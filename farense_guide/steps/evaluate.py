"""Evaluate a run: the fine-tuned adapter against the base model, on the test split.

Each variant (the base, the best adapter, each epoch's adapter) is scored by scoring.py and saved
under evaluation/variants/ as soon as it is done; a saved result with the same key (data, settings,
adapter and scoring code) is not scored again, and the base's is taken from a neighbouring run such
as runs/reference. Then the fine-tuned model is compared with the base on the same questions
(paired.py), and the report, the predictions, the CSV and the figures are written.

A folder without run.json whose adapters/ was written by stock `mlx_lm.lora --adapter-path <folder>/adapters`
becomes a run first: its run.json is made from the adapter_config.json mlx-lm saved (stock_run_info).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
from pathlib import Path

from farense_guide import inference, metrics, paired, scoring
from farense_guide.bars import task_bars
from farense_guide.errors import FarenseError
from farense_guide.scoring import DISTRACTORS, Item, load_items, score_variant
from farense_guide.runs import (Backend, Iterations, RunFolder, RunInfo, RunStatus, file_sha256, read_json, write_csv, write_json,
                                write_jsonl)

def loss_gap(run_folder) -> dict:
    """The last training-loss report against the last validation loss (the "overfitting gap")."""
    entries = run_folder.read_metrics()
    train = [m for m in entries if m["type"] == "train"]
    valid = [m for m in entries if m["type"] == "valid"]
    if not train or not valid:
        return {}
    return {"step": valid[-1]["step"], "train_loss": train[-1]["train_loss"], "val_loss": valid[-1]["val_loss"],
            "gap": valid[-1]["val_loss"] - train[-1]["train_loss"]}



def check_trained(run: RunFolder, info: RunInfo) -> None:
    """Refuse a run whose adapter was never trained: the "fine-tuned" model would be the base."""
    if not (run.adapters / "adapters.safetensors").is_file():
        raise FarenseError(f"{run.path}: não há adaptador em {run.adapters}.", f"treine-o primeiro: farense-guide train --resume {run.path}")
    if info.status == RunStatus.FAILED_NAN and not (info.best and info.best.step):
        raise FarenseError(f"{run.path}: o treino falhou (perda NaN) antes de qualquer validação; o adaptador não foi treinado.",
                           "comece um run novo com uma taxa de aprendizagem mais baixa (--learning-rate)")


def variants_of(run: RunFolder) -> dict[str, Path | None]:
    """What is evaluated: the base (no adapter), the best adapter, and the adapter of each epoch."""
    return {"base": None, "tuned": run.adapters, **{path.name: path for path in run.epoch_adapters()}}


def variant_label(name: str) -> str:
    return {"base": "base", "tuned": "afinado"}.get(name, name.replace("epoch-", "época "))


def variant_settings(info: RunInfo, data: Path, limit: int | None, max_tokens: int) -> dict:
    """Everything a variant's result depends on besides its adapter: a saved result with other settings is not reused."""
    code = b"".join(Path(module).read_bytes() for module in (scoring.__file__, metrics.__file__, inference.__file__))
    # The model by its folder's name (which holds a hash of its source), not by where this machine keeps it.
    backend = {**dataclasses.asdict(info.backend), "model_path": Path(info.backend.model_path).name}
    return {"data": {name: file_sha256(data / f"{name}.jsonl") for name in ("test", "valid")}, "limit": limit,
            "max_tokens": max_tokens, "distractors": DISTRACTORS, "backend": backend,
            "code": hashlib.sha256(code).hexdigest()}


def variant_key(settings: dict, adapter: Path | None) -> dict:
    """What a variant's saved result is reused for: these settings and this adapter's bytes (none for the base)."""
    return {**settings, "adapter": file_sha256(adapter / "adapters.safetensors") if adapter else None}


def save_variant(path: Path, key: dict, result: dict, answers: list[str]) -> Path:
    return write_json(path, {"key": key, "result": result, "answers": answers})


def saved_variant(run: RunFolder, name: str, key: dict) -> Path | None:
    """A saved result of this variant with this key: the run's own, or for the base model (the same for every run on
    the same model, data, settings and code) another run's beside it, e.g. runs/reference's."""
    own = run.evaluated_variant(name)
    others = sorted(RunFolder(folder).evaluated_variant(name) for folder in run.path.parent.iterdir()
                    if folder.is_dir() and folder != run.path) if name == "base" else []
    return next((path for path in (own, *others) if saved_key(path) == key), None)


def saved_key(path: Path) -> dict | None:
    """The key a saved variant was computed with; None if there is none or the file is unreadable."""
    try:
        return read_json(path).get("key") if path.is_file() else None
    except (FarenseError, OSError):  # another run's folder may be unreadable
        return None


def evaluate_variants(run: RunFolder, info: RunInfo, test: list[Item], valid: list[Item], settings: dict) -> tuple[dict, dict]:
    """Results and answers of every variant, each saved as soon as it is done; identical adapters are scored once."""
    per_variant = len(test) * (2 + DISTRACTORS) + len(valid) * (1 + DISTRACTORS)
    results, answers, evaluated = {}, {}, {}  # evaluated: variant -> adapter sha256
    with task_bars() as bars:
        for name, adapter in variants_of(run).items():
            label = variant_label(name)
            advance = bars.add(f"avaliação ({label})", per_variant)
            key = variant_key(settings, adapter)
            digest = key["adapter"]
            if same := next((done for done, other in evaluated.items() if other == digest), None):
                results[name], answers[name] = results[same], answers[same]  # e.g. the best adapter is the last epoch's
                advance(per_variant)
                continue
            evaluated[name] = digest
            if saved := saved_variant(run, name, key):
                done = read_json(saved)
                results[name], answers[name] = done["result"], done["answers"]
                advance(per_variant)
                bars.print(f"{label}: já avaliado em {saved}, com os mesmos dados, modelo, adaptador e código")
                if saved != run.evaluated_variant(name):
                    write_json(run.evaluated_variant(name), done)
                continue
            saved = run.evaluated_variant(name)
            results[name], answers[name] = score_variant(info, adapter, test, valid, settings["max_tokens"], advance)
            save_variant(saved, key, results[name], answers[name])
            summary = results[name]["summary"]
            bars.print(f"{label}: F1 {summary['f1']['mean']:.3f}, AUC {summary['auc']:.3f} (guardado em {saved})")
    return results, answers


def evaluation_report(run: RunFolder, info: RunInfo, data: Path, test: list[Item], limit: int | None, max_tokens: int,
                      results: dict) -> dict:
    """evaluation_report.json: the base, the best adapter and each epoch, with what they were measured on."""
    return {
        "run": info.name, "split": "test", "items": len(test), "limit": limit, "max_tokens": max_tokens,
        "data": {name: {"path": str(data / f"{name}.jsonl"), "sha256": file_sha256(data / f"{name}.jsonl")} for name in ("test", "valid")},
        "distractors": DISTRACTORS, "out_of_scope_items": sum(i.kind == "out_of_scope" for i in test),
        "base": results["base"]["summary"], "tuned": results["tuned"]["summary"],
        "paired": paired.paired_report(results["base"]["rows"], results["tuned"]["rows"], [item.kind for item in test], "base", "tuned"),
        "loss_gap": loss_gap(run),
        "epochs": {name.split("-")[1]: result["summary"] for name, result in results.items() if name.startswith("epoch-")},
    }


def prediction_rows(test: list[Item], answers: dict, results: dict) -> list[dict]:
    """predictions.jsonl: each test question with the base's and the fine-tuned model's answer and scores."""
    return [{"id": item.item_id, "kind": item.kind, "question": item.question, "reference": item.reference,
             "base_answer": answers["base"][index], "tuned_answer": answers["tuned"][index],
             "base_scores": results["base"]["rows"][index], "tuned_scores": results["tuned"]["rows"][index]}
            for index, item in enumerate(test)]


PAIRED_COLUMNS = ("difference", "ci_low", "ci_high", "p_value", "test", "significant")


def summary_rows(report: dict) -> list[list]:
    """evaluation_summary.csv: each metric's mean and 95% interval, base against fine-tuned, and the paired difference
    tuned - base with its interval, p-value and test ('' where there is none)."""
    rows = [["metric", "base", "base_ci_low", "base_ci_high", "tuned", "tuned_ci_low", "tuned_ci_high",
             *(f"paired_{column}" for column in PAIRED_COLUMNS)]]
    compared = report["paired"]["metrics"]
    for metric in ("exact_match", "precision", "recall", "f1", "rouge_l", "top1_accuracy", "refusal_rate_out_of_scope", "auc"):
        b, t = (report[variant]["auc_interval" if metric == "auc" else metric] for variant in ("base", "tuned"))
        difference = compared.get(metric, {})
        cells = (b["mean"], b["ci_low"], b["ci_high"], t["mean"], t["ci_low"], t["ci_high"], *(difference.get(c) for c in PAIRED_COLUMNS))
        rows.append([metric, *("" if v is None else v for v in cells)])
    rows.append(["perplexity", report["base"]["perplexity"], "", "", report["tuned"]["perplexity"], "", "", *[""] * len(PAIRED_COLUMNS)])
    return rows


def evaluation_items(info: RunInfo, limit: int | None) -> tuple[list[Item], list[Item]]:
    """The test and validation questions, the first `limit` of each (at least 2: the others' answers are the distractors)."""
    if limit is not None and limit < 2:
        raise FarenseError(f"--limit {limit}: são precisas pelo menos 2 perguntas (as respostas das outras servem de distratores).")
    data = Path(info.profile.data)
    return load_items(data / "test.jsonl", limit), load_items(data / "valid.jsonl", limit)


def stock_adapter_config(run: RunFolder) -> dict | None:
    """The adapter_config.json in a folder's adapters/ when stock mlx_lm.lora wrote it and the folder has no run.json.
    mlx_lm.lora saves every one of its arguments there (iters and data among them); `farense-guide train` saves only
    what loading the adapter needs."""
    path = run.adapters / "adapter_config.json"
    if run.exists() or not path.is_file():
        return None
    config = read_json(path)
    return config if {"iters", "data", "model"} <= set(config) else None


def stock_run_info(run: RunFolder, config: dict) -> RunInfo:
    """run.json for an adapter trained by mlx_lm.lora, from the arguments it saved, so that evaluate, report, compare,
    chat and model take the folder like any run. mlx-lm records no data hashes, versions, machine, losses or outcome:
    those stay empty, and its whole configuration is kept under the key "mlx_lm"."""
    from farense_guide.config import profile_from_dict
    from farense_guide.inference import default_device
    from farense_guide.models import resolve_model

    where = run.adapters / "adapter_config.json"
    if config.get("fine_tune_type", "lora") != "lora":
        raise FarenseError(f"{where}: adaptador {config['fine_tune_type']!r} do mlx_lm.lora; a avaliação só aceita adaptadores LoRA.")
    data = Path(config["data"])
    if not all((data / f"{split}.jsonl").is_file() for split in ("train", "valid", "test")):
        raise FarenseError(f"{where}: o mlx_lm.lora treinou com os dados {config['data']!r}, que não são uma pasta com train.jsonl, "
                           "valid.jsonl e test.jsonl.", "corra a avaliação na pasta de onde correu o mlx_lm.lora, com os mesmos dados")
    examples = {split: sum(1 for line in (data / f"{split}.jsonl").open(encoding="utf-8") if line.strip()) for split in ("train", "valid")}
    folder = resolve_model(str(config["model"]))
    bits = (read_json(folder / "config.json").get("quantization") or {}).get("bits")  # mlx-lm trains on the base as it is
    schedule = config.get("lr_schedule") or {}
    cosine = schedule.get("name") == "cosine_decay"  # other schedules have no profile name: the "mlx_lm" key records them
    try:
        lora, batch, iters = config["lora_parameters"], config["batch_size"], config["iters"]
        accumulation = config.get("grad_accumulation_steps", 1)
        steps_per_epoch = max(examples["train"] // batch, 1)
        profile = profile_from_dict({
            "name": "mlx_lm.lora", "description": "adaptador treinado pelo mlx_lm.lora, sem o farense-guide",
            "model": str(config["model"]), "quantized": bits is not None, "data": str(data),
            "lora": {"rank": lora["rank"], "scale": lora["scale"], "dropout": lora["dropout"], "num_layers": config["num_layers"]},
            "batch_size": batch, "grad_accumulation": accumulation, "max_seq_length": config["max_seq_length"],
            "grad_checkpoint": bool(config["grad_checkpoint"]), "learning_rate": config["learning_rate"],
            "lr_schedule": "cosine" if cosine else "constant", "warmup_steps": schedule.get("warmup", 0) if cosine else 0,
            "epochs": math.ceil(iters / steps_per_epoch),  # mlx-lm counts iterations, not epochs
            "mask_prompt": bool(config["mask_prompt"]), "seed": config["seed"], "steps_per_report": config["steps_per_report"],
            "steps_per_eval": config["steps_per_eval"], "save_every": config["save_every"], "val_batches": config["val_batches"],
            "early_stopping_patience": 0,
        }, where=str(where))
    except (KeyError, TypeError) as exc:
        raise FarenseError(f"{where}: não é um adapter_config.json completo do mlx_lm.lora (chave em falta ou de outro tipo: {exc}).") from None
    iterations = Iterations(epochs=profile.epochs, train_examples=examples["train"], valid_examples=examples["valid"],
                            batch_size=batch, grad_accumulation=accumulation, effective_batch=batch * accumulation,
                            steps_per_epoch=steps_per_epoch, full_steps=iters, total_steps=iters,
                            optimizer_steps=iters // accumulation, shortened=False)
    backend = Backend(device=default_device(), method=f"QLoRA (base a {bits} bits)" if bits else "LoRA", base_bits=bits,
                      model_path=str(folder))
    return RunInfo(name=run.name, profile=profile, iterations=iterations, data={}, backend=backend, status=RunStatus.COMPLETED,
                   extra={"trained_by": "mlx_lm.lora", "mlx_lm": config})


def evaluate_run(run_path: Path, limit: int | None = None, max_tokens: int = 96) -> dict:
    """Evaluate base and fine-tuned on test (threshold from valid); write run/evaluation/."""
    from farense_guide.report import build_report

    run = RunFolder(run_path)
    if (config := stock_adapter_config(run)) is not None:
        run.write_info(stock_run_info(run, config))
        print(f"{run.path}: o adaptador em {run.adapters} foi treinado pelo mlx_lm.lora; run.json escrito a partir do seu "
              "adapter_config.json.", file=sys.stderr)
    info = run.read_info()
    check_trained(run, info)
    limit = limit or info.profile.eval_limit
    test, valid = evaluation_items(info, limit)
    data = Path(info.profile.data)
    results, answers = evaluate_variants(run, info, test, valid, variant_settings(info, data, limit, max_tokens))
    report = evaluation_report(run, info, data, test, limit, max_tokens, results)
    write_json(run.evaluation_report, report)
    write_jsonl(run.predictions, prediction_rows(test, answers, results))
    write_csv(run.evaluation_summary, summary_rows(report))
    build_report(run.path)  # figures, tables and EVALUATION_REPORT.md
    return report
