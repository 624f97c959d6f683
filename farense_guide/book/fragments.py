"""The guide's generated fragments: every number and figure the chapters show, taken from files.

`farense-guide fragments --run runs/<name>` writes `guide/_generated/`:

    values.json        named values for the prose ([[run.tuned_f1]], see markdown_values.py)
    run_banner.md      which run the pages show: reference or demonstration, machine, date
    training.md, evaluation.md, epochs.md   the run's tables (report.py wrote them)
    memory_m1.md       the memory estimator's table for Mistral-7B on a 16 GB M1
    fuse_check.md      the run's fuse check(s): fused answers against base + adapter
    compare_gpu.md     the run next to runs/reference-cuda, the QLoRA run on an NVIDIA GPU (values gpu.*)
    figures/*.png      the run's figures
    (and what each module of farense_guide/book/sections/ writes: the teaching sections' examples and tables)

Sources: the run folder (run.json, evaluation/evaluation_report.json, tables/, figures/), the data
statistics (data/stats/stats.json), the training profiles and the memory estimator. A stamp of all
inputs skips the work when nothing changed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from farense_guide import metrics
from farense_guide.errors import FarenseError
from farense_guide.data.output import markdown_cell
from farense_guide.data.records import read_jsonl
from farense_guide.pt_format import (duration, parse_stamp, pt, pt_date, pt_interval, pt_learning_rate, pt_p_value, pt_scientific,
                                     pt_signed, pt_signed_interval)
from farense_guide.runs import RunFolder, Stamp, read_json, safe_write, write_json

OUTPUT = Path("guide/_generated")
REFERENCE = Path("runs/reference")
GPU_RUN = Path("runs/reference-cuda")  # the smollm2 profile in QLoRA on an NVIDIA GPU (tools/gpu_qlora_reference.sh), as of its date
STAMP = ".fragments-stamp"
RUN_TABLES = ("training.md", "evaluation.md", "epochs.md")
FUSE_BITS = (None, 4)  # the fuse checks the guide shows: the float fuse, and the fuse re-quantized to 4 bits

# Metal's recommendedMaxWorkingSetSize on a 16 GB M1, as llama.cpp logs it ("10922.67 MB", MiB): about two thirds of
# the RAM, a recommendation (the wired limit is the cap) and the estimator's budget (llama-cpp-python issue 687 shows the line).
M1_16GB_WORKING_SET = 10922.67 * 2**20
# The 8-core M1 GPU's peak: 2.6 TFLOP/s in float32 (Apple's figure for the M1, 2020); the 7-core M1 has 7/8 of it.
M1_GPU_FLOPS = 2.6e12
# Training the m1-16gb profile costs ~4 FLOPs per parameter per token: 2 forward through every layer; ~1 backward
# (activation gradients only, the base being frozen, and only through the 16 adapted layers of 32); ~1 for gradient
# checkpointing, which runs those layers' forward again. Without checkpointing ~3; with every layer adapted ~6.
FLOPS_PER_PARAMETER_TOKEN = 4
SEVEN_B_PARAMETERS = 7e9
STORY_CLAIMED_TOKENS_PER_SECOND = (300, 500)  # what the story's 7B guide claimed on an M1


def code(text: str) -> str:
    """Text from a run (a name, a path, a model) as inline code in Markdown prose or a table cell; as escaped plain text
    where a backtick, a pipe or a line break would end the code span, the cell or the row early."""
    return markdown_cell(text) if any(char in text for char in "`|\n\r") else f"`{text}`"


def machine_label(machine: dict) -> str:
    """run.json's machine as one line of text: «AMD EPYC, 2 núcleos, 25 GB de RAM (Linux)»."""
    parts = [machine.get("processor") or machine.get("machine", "?")]
    if machine.get("cores"):
        parts.append(f"{machine['cores']} núcleos")
    if machine.get("memory_gb"):
        parts.append(f"{pt(machine['memory_gb'], 0)} GB de RAM")
    if machine.get("accelerator"):
        parts.append(machine["accelerator"])
    return f"{', '.join(parts)} ({machine.get('system', '?')})"


def is_reference(run_path: Path) -> bool:
    return run_path.resolve() == REFERENCE.resolve()


def run_values(run_path: Path) -> dict[str, str]:
    info = RunFolder(run_path).read_info()
    profile, iterations, backend, best, throughput = info.profile, info.iterations, info.backend, info.best, info.throughput
    seconds = (parse_stamp(info.ended_at) - parse_stamp(info.started_at)).total_seconds()
    values = {
        "name": info.name, "profile": profile.name, "description": profile.description, "model": profile.model,
        "method": backend.method, "device": backend.device,
        "precision": info.memory["estimate"].get("precision", backend.method),
        "date": pt_date(info.started_at), "machine": machine_label(info.machine),
        "steps_done": str(info.steps_done or 0), "total_steps": str(iterations.total_steps),
        "full_steps": str(iterations.full_steps), "steps_per_epoch": str(iterations.steps_per_epoch),
        "epochs": str(iterations.epochs), "batch_size": str(iterations.batch_size),
        "train_examples": pt(iterations.train_examples, 0),
        "tokens_per_second": pt(throughput.tokens_per_second if throughput else None, 1),
        "trained_tokens": pt(throughput.trained_tokens if throughput else None, 0),
        "peak_memory_gb": pt(info.memory.get("peak_gb"), 2),
        "best_val_loss": pt(best.val_loss if best else None, 3), "best_step": str(best.step) if best else "—",
        "duration": duration(seconds),
        "lora_rank": str(profile.lora.rank), "lora_scale": pt(profile.lora.scale, 1),
        "lora_layers": str(profile.lora.num_layers), "lora_dropout": pt(profile.lora.dropout, 2),
        "learning_rate": pt_learning_rate(profile.learning_rate), "max_seq_length": str(profile.max_seq_length),
        "kind": "referência" if is_reference(run_path) else "demonstração",
    }
    return {f"run.{key}": value for key, value in values.items()}


def read_evaluation(run_path: Path) -> dict:
    """The run's evaluation_report.json; a run not yet evaluated stops here, saying how to evaluate it."""
    path = RunFolder(run_path).evaluation_report
    if not path.exists():
        raise FarenseError(f"{path}: o run ainda não foi avaliado.", hint=f"farense-guide evaluate {run_path}")
    return read_json(path)


def variant_values(summary: dict) -> dict[str, str]:
    """One variant's (base, tuned) test metrics: means, 95% intervals, AUC, perplexity, threshold, confusion."""
    values = {}
    for metric in ("exact_match", "precision", "recall", "f1", "rouge_l", "top1_accuracy",
                   "refusal_rate_out_of_scope", "refusal_rate_facts"):
        values[metric] = pt(summary[metric]["mean"], 3)
        values[f"{metric}_ci"] = pt_interval(summary[metric])
    values["auc"] = pt(summary["auc"], 3)
    if interval := summary.get("auc_interval"):  # evaluations before this interval existed lack it
        values["auc_ci"] = pt_interval(interval)
    values["perplexity"] = pt(summary["perplexity"], 2)
    values["threshold"] = pt(summary["threshold"], 3)
    for metric in ("precision", "recall", "f1"):
        values[f"confusion_{metric}"] = pt(summary["confusion"][metric], 3)
    return values


def paired_values(report: dict) -> dict[str, str]:
    """Tuned minus base on the same questions (paired.py), metric by metric: the difference, its interval, the test's p
    and a verdict; «—» for a metric the run has no comparison of (no out-of-scope question, an older evaluation)."""
    from farense_guide import paired

    compared = report.get("paired", {}).get("metrics", {})
    values = {"paired.alpha": pt(paired.ALPHA, 2)}
    for name in ("exact_match", *paired.GRADED, "top1_accuracy", "auc", "refusal_rate_out_of_scope"):
        d = compared.get(name)
        values.update({f"paired.{name}.difference": pt_signed(d["difference"], 3) if d else "—",
                       f"paired.{name}.ci": pt_signed_interval(d) if d else "—", f"paired.{name}.p": pt_p_value(d["p_value"]) if d else "—",
                       f"paired.{name}.test": d["test"] if d else "—",
                       f"paired.{name}.verdict": ("significativa" if d["significant"] else "não significativa") if d else "—"})
        if name in ("exact_match", "top1_accuracy", "refusal_rate_out_of_scope"):
            values.update({f"paired.{name}.only_base": str(d["only_first"]) if d else "—",
                           f"paired.{name}.only_tuned": str(d["only_second"]) if d else "—"})
    return values


def f1_pairing(first: list[float], second: list[float]) -> tuple[float, float, metrics.Interval] | None:
    """Two models' per-question F1: their correlation, the width of their difference's paired interval, and the
    difference's interval when the pairing is ignored (each model's questions resampled on their own); None where
    there is too little to say."""
    from farense_guide import paired

    if len(first) < 3 or not np.std(first) or not np.std(second):
        return None
    difference = paired.paired_bootstrap(first, second)
    return float(np.corrcoef(first, second)[0, 1]), difference.ci_high - difference.ci_low, paired.unpaired_bootstrap(first, second)


def unpaired_f1_values(run_path: Path) -> dict[str, str]:
    """Base against tuned F1 with the pairing ignored, against the paired interval: what ignoring the pairing costs
    (chapter 10)."""
    path = RunFolder(run_path).predictions
    rows = read_jsonl(path) if path.exists() else []
    pairing = f1_pairing([r["base_scores"]["f1"] for r in rows], [r["tuned_scores"]["f1"] for r in rows])
    if pairing is None:
        return dict.fromkeys(("unpaired.f1.ci", "unpaired.f1.width", "unpaired.f1.versus", "f1.correlation", "paired.f1.width"), "—")
    correlation, paired_width, unpaired = pairing
    width = unpaired.high - unpaired.low
    return {"unpaired.f1.ci": pt_signed_interval({"ci_low": unpaired.low, "ci_high": unpaired.high}), "unpaired.f1.width": pt(width, 3),
            "unpaired.f1.versus": "mais largo" if width > paired_width else "mais estreito" if width < paired_width else "tão largo",
            "f1.correlation": pt(correlation, 2), "paired.f1.width": pt(paired_width, 3)}


def tuned_pairing_values(run_path: Path, other: Path) -> dict[str, str]:
    """Two runs' fine-tuned F1 on their common test questions: their correlation, and the width of the difference's
    interval paired and unpaired (chapter 10: what pairing buys between two fine-tuned runs)."""
    names = ("f1.correlation_gpu_run", "f1.gpu_run_paired_width", "f1.gpu_run_unpaired_width")
    paths = [RunFolder(run_path).predictions, RunFolder(other).predictions]
    if not all(path.exists() for path in paths):
        return dict.fromkeys(names, "—")
    first, second = ({row["id"]: row["tuned_scores"]["f1"] for row in read_jsonl(path)} for path in paths)
    common = [question for question in first if question in second]
    pairing = f1_pairing([first[q] for q in common], [second[q] for q in common])
    if pairing is None:
        return dict.fromkeys(names, "—")
    correlation, paired_width, unpaired = pairing
    return dict(zip(names, (pt(correlation, 2), pt(paired_width, 3), pt(unpaired.high - unpaired.low, 3))))


def comparison_values(report: dict) -> dict[str, str]:
    """Tuned minus base (the paired comparison and the plain difference of means), and the loss gap at the end."""
    values = {f"gain.{metric}": pt(report["tuned"][metric]["mean"] - report["base"][metric]["mean"], 3)
              for metric in ("f1", "rouge_l", "top1_accuracy")}
    values["gain.auc"] = pt(report["tuned"]["auc"] - report["base"]["auc"], 3)
    values.update(paired_values(report))
    gap = report.get("loss_gap") or {}
    if gap:
        values.update({"loss_gap.train": pt(gap["train_loss"], 3), "loss_gap.valid": pt(gap["val_loss"], 3),
                       "loss_gap.gap": pt(gap["gap"], 3)})
    return values


def evaluation_values(run_path: Path) -> dict[str, str]:
    report = read_evaluation(run_path)
    defaults = inspect.signature(metrics.bootstrap_interval).parameters
    values = {"bootstrap_resamples": str(defaults["resamples"].default),
              "bootstrap_confidence": pt(100 * defaults["confidence"].default, 0) + "%",
              "items": str(report["items"]), "out_of_scope_items": str(report["out_of_scope_items"]),
              "distractors": str(report["distractors"]), "limited": "sim" if report.get("limit") else "não",
              "wilson_no_refusal": pt_interval(metrics.wilson_interval(0, report["out_of_scope_items"]).as_dict())}
    for variant in ("base", "tuned"):
        values.update({f"{variant}.{key}": value for key, value in variant_values(report[variant]).items()})
    values.update(comparison_values(report))
    values.update(unpaired_f1_values(run_path))
    values.update(tuned_pairing_values(run_path, GPU_RUN))
    return {f"eval.{key}": value for key, value in values.items()}


def data_values(stats_path: Path) -> dict[str, str]:
    stats = read_json(stats_path)
    splits = stats["splits"]
    total = sum(s["examples"] for s in splits.values())
    out_of_scope = sum(s["out_of_scope"] for s in splits.values())
    values = {"total_examples": pt(total, 0), "out_of_scope_share": pt(100 * out_of_scope / total, 0) + "%"}
    for name, split in splits.items():
        for key in ("examples", "out_of_scope", "multi_turn", "tokens_total"):
            values[f"{name}.{key}"] = pt(split[key], 0)
        for key in ("tokens_p50", "tokens_p99", "tokens_max", "tokens_mean"):
            values[f"{name}.{key}"] = pt(split[key], 0)
    return {f"data.{key}": value for key, value in values.items()}


def profile_values() -> dict[str, str]:
    from farense_guide.config import PROFILE_DIR, load_profile

    values = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        profile = load_profile(path.stem)
        fields = {"model": profile.model, "lora_rank": profile.lora.rank, "lora_scale": pt(profile.lora.scale, 1),
                  "lora_layers": profile.lora.num_layers, "lora_dropout": pt(profile.lora.dropout, 2),
                  "batch_size": profile.batch_size, "grad_accumulation": profile.grad_accumulation,
                  "max_seq_length": profile.max_seq_length, "epochs": profile.epochs,
                  "learning_rate": pt_learning_rate(profile.learning_rate), "max_steps": profile.max_steps or "—",
                  "warmup_steps": profile.warmup_steps, "save_every": profile.save_every,
                  "keep_checkpoints": profile.keep_checkpoints, "steps_per_eval": profile.steps_per_eval,
                  "early_stopping_patience": profile.early_stopping_patience,
                  "memory_limit_gb": f"{profile.memory_limit_gb:g}" if profile.memory_limit_gb else "—",  # 10.0 -> "10"
                  "eval_limit": profile.eval_limit or "—", "seed": profile.seed}
        values.update({f"profile.{path.stem}.{key}": str(value) for key, value in fields.items()})
    return values


def memory_rows() -> list[tuple[str, str, object]]:
    """The m1-16gb profile (Mistral-7B, 4 bits) and the variations the guide discusses."""
    from farense_guide.memory import ModelShape, estimate_memory
    from farense_guide.memory import estimate_for
    from farense_guide.config import load_profile

    profile = load_profile("m1-16gb")
    shape = ModelShape.from_config(profile.model_shape)
    variations = [
        ("profile", "perfil m1-16gb (QLoRA 4 bits, batch 2 × 512, gradient checkpointing)", profile, True),
        ("no_checkpoint", "o mesmo sem gradient checkpointing", replace(profile, grad_checkpoint=False), True),
        ("no_checkpoint_no_dropout", "o mesmo sem checkpointing e sem dropout",
         replace(profile, grad_checkpoint=False, lora=replace(profile.lora, dropout=0.0)), True),
        ("batch1", "batch 1 × 512, com checkpointing", replace(profile, batch_size=1), True),
        ("seq1024", "batch 2 × 1024, com checkpointing", replace(profile, max_seq_length=1024), True),
        ("rank16", "LoRA rank 16, com checkpointing", replace(profile, lora=replace(profile.lora, rank=16)), True),
        ("all_layers", "todas as 32 camadas com LoRA, com checkpointing", replace(profile, lora=replace(profile.lora, num_layers=32)), True),
    ]
    rows = [(key, label, estimate_for(variant, shape, quantized)[0]) for key, label, variant, quantized in variations]
    float16 = estimate_memory(shape, weight_bits=None, compute_bytes=2, lora_rank=profile.lora.rank, lora_layers=profile.lora.num_layers,
                              batch_size=profile.batch_size, seq_length=profile.max_seq_length, grad_checkpoint=True,
                              lora_dropout=profile.lora.dropout)
    return [*rows, ("float16", "base em float16, sem quantização (LoRA), com checkpointing", float16)]


def memory_table() -> tuple[str, dict[str, str]]:
    from farense_guide.memory import GB, judge_fit

    lines = ["| configuração | pesos | LoRA + Adam | ativações | logits | total | num M1 de 16 GB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    values = {"memory.m1_budget_gb": pt(M1_16GB_WORKING_SET / GB, 1)}
    rows = memory_rows()
    for key, label, estimate in rows:
        cells = [pt(x / GB, 2) for x in (estimate.weights, estimate.lora, estimate.activations, estimate.logits, estimate.total)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {judge_fit(estimate.total, M1_16GB_WORKING_SET).label} |")
        values[f"memory.{key}.total_gb"] = pt(estimate.total / GB, 1)
        values[f"memory.{key}.weights_gb"] = pt(estimate.weights / GB, 1)
        values[f"memory.{key}.verdict"] = judge_fit(estimate.total, M1_16GB_WORKING_SET).label
    values["memory.lora_parameters"] = pt(rows[0][2].lora_parameters, 0)
    note = ("\nEm GB (10⁹ bytes), no pico de um passo de treino. O orçamento do M1 de 16 GB é o que o Metal recomenda à GPU "
            f"(recommendedMaxWorkingSetSize, {values['memory.m1_budget_gb']} GB, uma recomendação e não um teto: capítulo 11); "
            "«cabe» é até 85% dele.\n")
    return "\n".join(lines) + "\n" + note, values


M1_SHAPE_RECORD = Path("runs/m1-shape-cuda/m1_shape_record.json")  # tools/gpu_m1_shape.sh: the m1-16gb profile measured
M1_SHAPE_FIELDS = ("estimate_gb", "peak_gb", "ratio", "tokens_per_second")
ESTIMATE_TOLERANCE = 0.15  # how far from a measured peak the memory estimate may be (the issue that asked for the record)


def m1_shape_values(record_path: Path = M1_SHAPE_RECORD) -> dict[str, str]:
    """The m1-16gb profile run on a Mistral-7B-shaped model on an NVIDIA GPU: estimate, measured peak, their ratio and
    tokens/s after the first window, with and without checkpointing; «—» where the record is not here."""
    runs = {"checkpoint": None, "no_checkpoint": None}
    if record_path.exists():
        record = read_json(record_path)
        runs = {("checkpoint" if row["grad_checkpoint"] else "no_checkpoint"): row for row in record["runs"]}
    values = {}
    for key, row in runs.items():
        cells = ((pt(row["estimate_gb"], 2), pt(row["peak_gb"], 2), pt(row["estimate_over_peak"], 2), pt(row["steady_tokens_per_second"], 0))
                 if row else ("—",) * len(M1_SHAPE_FIELDS))
        values.update({f"m1shape.{key}.{field}": cell for field, cell in zip(M1_SHAPE_FIELDS, cells)})
    row = runs["checkpoint"]
    values["m1shape.gpu"] = row["machine"].get("accelerator", "—") if row else "—"
    values["m1shape.tolerance"] = f"{ESTIMATE_TOLERANCE:.0%}"
    return values


def llamacpp_values(run_path: Path) -> dict[str, str]:
    """The run's GGUF in llama.cpp against the fused MLX model (export/llamacpp_check.json); «—» where it was not run."""
    path = RunFolder(run_path).export / "llamacpp_check.json"
    names = ("identical", "items", "share", "f1_llamacpp", "f1_fused", "version", "differing", "as_float16")
    if not path.exists():
        return {f"llamacpp.{name}": "—" for name in names}
    check = read_json(path)
    as_float16 = check.get("differing_as_mlx_float16")
    cells = (str(check["identical"]), str(check["items"]), pt(100 * check["identical_share"], 1), pt(check["f1_llamacpp"], 3),
             pt(check["f1_fused"], 3), check["llama_cpp_python"], str(check["differing"]), "—" if as_float16 is None else str(as_float16))
    return {f"llamacpp.{name}": cell for name, cell in zip(names, cells)}


def compute_values(stats_path: Path) -> dict[str, str]:
    """The compute bound of chapter 11: a 7B model on the M1 GPU, and the m1-16gb profile's epochs of the Farense data."""
    from farense_guide.config import load_profile

    epochs = load_profile("m1-16gb").epochs
    flops_per_token = FLOPS_PER_PARAMETER_TOKEN * SEVEN_B_PARAMETERS
    ceiling = M1_GPU_FLOPS / flops_per_token
    train_tokens = read_json(stats_path)["splits"]["train"]["tokens_total"]
    epoch_seconds = train_tokens / ceiling
    return {"compute.flops_per_token": pt_scientific(flops_per_token),
            "compute.m1_tflops": pt(M1_GPU_FLOPS / 1e12, 1), "compute.max_tokens_per_second": pt(ceiling, 0),
            "compute.train_tokens": pt(train_tokens, 0), "compute.epoch_minutes": pt(epoch_seconds / 60, 0),
            "compute.profile_epochs_minutes": pt(epochs * epoch_seconds / 60, 0),
            "compute.story_claim": str(STORY_CLAIMED_TOKENS_PER_SECOND[0]),
            "compute.story_claim_high": str(STORY_CLAIMED_TOKENS_PER_SECOND[1]),
            "compute.story_claim_ratio": pt(STORY_CLAIMED_TOKENS_PER_SECOND[0] / ceiling, 1)}


def run_banner(run_path: Path, values: dict[str, str]) -> str:
    shortened = RunFolder(run_path).read_info().shortened
    kind = "note" if is_reference(run_path) else "warning"
    title = ("Run de referência" if is_reference(run_path)
             else "Run encurtado, não a referência" if shortened else "Run de demonstração, não a referência")
    lines = [f'!!! {kind} "{title}: {markdown_cell(values["run.name"])}"', "",
             f"    Perfil {code(values['run.profile'])} (modelo {code(values['run.model'])}), {markdown_cell(values['run.precision'])}, "
             f"em {markdown_cell(values['run.machine'])}, a {values['run.date']}. "
             f"{values['run.steps_done']} passos de {values['run.full_steps']} de um treino completo"
             + (" (run encurtado)." if shortened else ".")]
    if not is_reference(run_path):
        if description := values["run.description"].strip().rstrip("."):
            lines[-1] += f" O perfil descreve-se assim: {markdown_cell(description)}."
        comparison = reference_comparison(run_path)
        where = ("`nox -s docs`, sem `--run`, mostra o run de referência, `runs/reference/`; a tabela compara os dois."
                 if comparison else "O run de referência fica em `runs/reference/` e substitui-os quando existir.")
        lines += ["", f"    Estes números vêm de um run pequeno, feito para construir o site; não medem o que o guia descreve. {where}"]
        lines += ["    " + line if line else "" for line in comparison]
    if values.get("eval.limited") == "sim":
        lines += ["", f"    A avaliação usou só as primeiras {values['eval.items']} perguntas de teste (`eval_limit` ou `--limit`)."]
    return "\n".join(lines) + "\n"


def reference_comparison(run_path: Path, reference: Path = REFERENCE) -> list[str]:
    """Markdown lines: this run's fine-tuned model against the reference's, paired on the test questions both answered
    (steps/compare.py); none where the reference is not evaluated."""
    from farense_guide.steps.compare import compare_runs, comparison_note, comparison_rows, markdown_table

    if not RunFolder(reference).predictions.exists():
        return []
    try:
        result = compare_runs(reference, run_path)
    except FarenseError as error:  # another test file, or too few common questions: no pairing to show
        return ["", f"A comparação pergunta a pergunta com {code(reference.as_posix())} não se pode fazer: {markdown_cell(error.args[0])}"]
    rows = comparison_rows(result)
    rows[0][1:3] = [code(reference.name), code(run_path.name)]
    return ["", *markdown_table(rows), "", comparison_note(result)]


def fuse_checks(run_path: Path) -> list[tuple[int | None, dict]]:
    """(bits, fuse_check.json) of each fuse check the run has, the float one first."""
    run = RunFolder(run_path)
    paths = [(bits, run.fuse_check(bits) / "fuse_check.json") for bits in FUSE_BITS]
    return [(bits, read_json(path)) for bits, path in paths if path.exists()]


def fuse_row(bits: int | None, check: dict) -> tuple[str, dict[str, str]]:
    """One fuse check: its table row and its values (fuse.* for the float fuse, fuse4.* for 4 bits)."""
    c = check["comparison"]
    label = f"re-quantizado a {bits} bits" if bits else f"em {check['dtype']}"
    share = f"{c['identical']} de {c['items']} ({pt(100 * c['match_share'], 1)} %)"
    row = (f"| {label} | {share} | {pt(c['f1_adapter']['mean'], 3)} | {pt(c['f1_fused']['mean'], 3)} "
           f"| {pt(c['f1_drop'], 3)} | {'passou' if check['passed'] else 'falhou'} |")
    prefix = f"fuse{bits}" if bits else "fuse"
    values = {"identical": str(c["identical"]), "items": str(c["items"]), "match_share": pt(100 * c["match_share"], 1),
              "f1_adapter": pt(c["f1_adapter"]["mean"], 3), "f1_fused": pt(c["f1_fused"]["mean"], 3),
              "f1_drop": pt(c["f1_drop"], 3), "max_tokens": str(check["max_tokens"])}
    return row, {f"{prefix}.{key}": value for key, value in values.items()}


def fuse_fragment(run_path: Path) -> tuple[str, dict[str, str]]:
    """fuse_check.md: the fuse check(s) of the run as a table, or a note that the run has none."""
    checks = fuse_checks(run_path)
    if not checks:
        return (f'!!! note "Sem verificação da fusão"\n\n    O run {code(run_path.name)} ainda não tem verificação da fusão: '
                f"{code('farense-guide fuse ' + run_path.as_posix())} fá-la.\n"), {}
    lines = ["| modelo fundido | respostas iguais | F1 base + adaptador | F1 fundido | descida do F1 | resultado |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    values = {}
    for bits, check in checks:
        row, row_values = fuse_row(bits, check)
        lines.append(row)
        values.update(row_values)
    first = checks[0][1]
    lines += ["", f"Respostas greedy (até {first['max_tokens']} tokens) às perguntas de teste do run {code(run_path.name)}; "
              f"tolerância: pelo menos {pt(100 * first['tolerance']['min_match'], 0)} % de respostas iguais e uma descida do F1 "
              f"de no máximo {pt(first['tolerance']['max_f1_drop'], 3)}. Fonte: {code(run_path.as_posix() + '/fuse_check*/fuse_check.json')}."]
    return "\n".join(lines) + "\n", values


# The rows of compare_gpu.md, (id, label): an id is a key of the values, or one of the composed cells of gpu_cell.
GPU_ROWS = [
    ("run.machine", "máquina"), ("run.method", "método"), ("run.learning_rate", "taxa de aprendizagem"), ("steps", "passos"),
    ("run.duration", "duração"),
    ("run.tokens_per_second", "tokens/s (tokens de resposta)"), ("run.peak_memory_gb", "memória de pico (GB)"),
    ("run.best_val_loss", "melhor perda de validação"), ("eval.base.f1", "F1 do modelo base"),
    ("eval.tuned.f1", "F1 do modelo afinado"), ("eval.tuned.f1_ci", "IC 95% do F1 afinado"),
    ("auc", "AUC base → afinado"), ("fuse", "fusão em float"), ("fuse4", "fusão re-quantizada a 4 bits"),
]


def gpu_cell(row: str, values: dict[str, str]) -> str:
    if row == "steps":
        return f"{values['run.steps_done']} de {values['run.full_steps']}"
    if row == "auc":
        return f"{values['eval.base.auc']} → {values['eval.tuned.auc']}"
    if row in ("fuse", "fuse4"):
        if f"{row}.items" not in values:
            return "—"
        return f"{values[f'{row}.identical']} de {values[f'{row}.items']} iguais; F1 {values[f'{row}.f1_adapter']} → {values[f'{row}.f1_fused']}"
    return markdown_cell(values[row])


def gpu_comparison(run_path: Path, gpu_run: Path) -> tuple[str, dict[str, str]]:
    """compare_gpu.md: the run next to the QLoRA run made on an NVIDIA GPU; its values as gpu.*."""
    if not RunFolder(gpu_run).evaluation_report.exists():
        raise FarenseError(f"{gpu_run}: falta o run de QLoRA na GPU (avaliado), que o guia compara com este.",
                           hint="vem com o repositório: git checkout -- runs/reference-cuda")
    mine = {**run_values(run_path), **evaluation_values(run_path), **fuse_fragment(run_path)[1]}
    gpu = {**run_values(gpu_run), **evaluation_values(gpu_run), **fuse_fragment(gpu_run)[1]}
    lines = [f"| | {code(run_path.name)} | {code(gpu_run.name)} |", "| --- | ---: | ---: |"]
    lines += [f"| {label} | {gpu_cell(row, mine)} | {gpu_cell(row, gpu)} |" for row, label in GPU_ROWS]
    lines += ["", f"Fontes: {code(run_path.as_posix() + '/')} e {code(gpu_run.as_posix() + '/')} (run.json, evaluation/, fuse_check*/)."]
    return "\n".join(lines) + "\n", {f"gpu.{key}": value for key, value in gpu.items()}


def section_modules() -> list:
    """The modules of farense_guide/book/sections/, by name: each writes the fragments of one teaching section."""
    from farense_guide.book import sections

    names = sorted(info.name for info in pkgutil.iter_modules(sections.__path__))
    return [importlib.import_module(f"{sections.__name__}.{name}") for name in names]


def fragments_stamp(run_path: Path, output: Path, stats_path: Path) -> Stamp:
    """The stamp of every input: the run, its tables and figures, the data statistics, the profiles, the reference
    and GPU runs the pages compare it with, and this code. The stamp names the paths: files are resolved, code goes
    in as text."""
    from farense_guide import config, memory, pt_format

    run, reference, gpu = RunFolder(run_path), RunFolder(REFERENCE), RunFolder(GPU_RUN)
    files = [run.run_json, run.evaluation_report, stats_path, *sorted(config.PROFILE_DIR.glob("*.yaml"))]
    files += [run.tables / name for name in RUN_TABLES] + sorted(run.figures.glob("*.png")) + run.fuse_checks()
    files += [run.predictions, reference.evaluation_report, reference.predictions, gpu.run_json, gpu.evaluation_report,
              gpu.predictions, *gpu.fuse_checks()]
    files += [M1_SHAPE_RECORD, run.export / "llamacpp_check.json"]
    for module in section_modules():
        files += [*module.sources(run_path), *(source for source, _ in getattr(module, "FIGURES", []))]
    code = [Path(path) for path in (__file__, memory.__file__, pt_format.__file__)]
    code += [Path(module.__file__) for module in section_modules()]
    return Stamp(output / STAMP, files + code)


def choose_run(run: Path | None) -> Path:
    if run is not None:
        if not RunFolder(run).exists():
            raise FarenseError(f"{run}: não é a pasta de um run (falta run.json).")
        return run
    if RunFolder(REFERENCE).exists():
        return REFERENCE
    raise FarenseError("não há runs/reference/ e nenhum --run foi indicado.",
                       hint="`nox -s docs` faz um run de demonstração; ou `farense-guide fragments --run runs/<nome>`")


def check_ready(run_path: Path) -> None:
    """A run whose training ended and whose report was made, else an error that says what to run."""
    run = RunFolder(run_path)
    if run.read_info().ended_at is None:
        raise FarenseError(f"{run_path}: o treino ainda não terminou (run.json sem ended_at).",
                           hint=f"espere pelo fim (farense-guide monitor {run_path}) ou retome-o (farense-guide train --resume {run_path})")
    if not (run.tables / "training.md").exists():
        raise FarenseError(f"{run_path}: faltam as tabelas e figuras.", hint=f"farense-guide report {run_path}")


def copy_run_outputs(run_path: Path, output: Path) -> list[Path]:
    """The run's tables and figures, copied as they are."""
    run = RunFolder(run_path)
    copies = [(run.tables / name, output / name) for name in RUN_TABLES]
    copies += [(figure, output / "figures" / figure.name) for figure in sorted(run.figures.glob("*.png"))]
    return [safe_write(target, source.read_bytes()) for source, target in copies]


def generate(run: Path | None = None, output: Path = OUTPUT, stats_path: Path = Path("data/stats/stats.json"),
             force: bool = False) -> list[Path]:
    """Write guide/_generated/ from a run; returns what was written ([] when up to date)."""
    run_path = choose_run(run)
    check_ready(run_path)
    stamp = fragments_stamp(run_path, output, stats_path)
    if not force and stamp.is_current():
        return []
    if output.exists():
        shutil.rmtree(output)
    (output / "figures").mkdir(parents=True)
    values = {**run_values(run_path), **evaluation_values(run_path), **data_values(stats_path), **profile_values(),
              **compute_values(stats_path), **m1_shape_values(), **llamacpp_values(run_path)}
    memory_markdown, memory_values = memory_table()
    gpu_markdown, gpu_values = gpu_comparison(run_path, GPU_RUN)
    fuse_markdown, fuse_values = fuse_fragment(run_path)
    values.update({**memory_values, **gpu_values, **fuse_values})
    written = copy_run_outputs(run_path, output)
    for module in section_modules():
        files, section_values = module.fragment(run_path)
        values.update(section_values)
        written += [safe_write(output / name, markdown) for name, markdown in files.items()]
        written += [safe_write(output / "figures" / name, Path(source).read_bytes()) for source, name in getattr(module, "FIGURES", [])]
    written += [safe_write(output / "compare_gpu.md", gpu_markdown), safe_write(output / "fuse_check.md", fuse_markdown),
                safe_write(output / "memory_m1.md", memory_markdown), safe_write(output / "run_banner.md", run_banner(run_path, values)),
                write_json(output / "values.json", dict(sorted(values.items())))]
    stamp.record()
    return written
