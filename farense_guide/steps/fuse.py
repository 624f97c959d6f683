"""`farense-guide fuse runs/<name>`: the adapter merged into a standalone model, and checked.

mlx-lm's fuse adds the LoRA product to a 4-bit base and quantizes the sum again; a delta smaller
than the quantization step rounds away and the fused model answers like the base (mlx-lm issue
654). Here every adapted layer is dequantized and merged in float32, and the model is saved in
float (the base's own float type) unless `--bits` asks for re-quantization.

Then the check: the fused model, loaded back from disk, answers the test questions greedily next
to base + adapter. The report gives the share of identical answers and the F1 of each against the
reference. A fuse outside the tolerance is not kept: the command fails and says by how much.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from farense_guide import metrics
from farense_guide.bars import task_bars
from farense_guide.errors import FarenseError
from farense_guide.inference import greedy_answers, load_run_model
from farense_guide.pt_format import pt, pt_mean_interval
from farense_guide.runs import RunFolder, RunInfo, file_sha256, read_json, safe_write, write_json, write_jsonl
from farense_guide.scoring import Item, generative_scores, load_items
from farense_guide.steps.evaluate import check_trained

DEFAULT_MIN_MATCH = 0.9  # share of identical greedy answers
DEFAULT_MAX_F1_DROP = 0.02  # mean F1 of base + adapter minus that of the fused model
QUANTIZATION_GROUP = 64  # for --bits over a float base; a quantized base keeps its own group size
BITS = (2, 3, 4, 5, 6, 8)
PROVENANCE = "farense_fuse.json"  # in the fused model's folder: which run and adapter it came from, and the check's verdict


def merged_linear(layer, dtype):
    """An nn.Linear with W + scale·BᵀAᵀ, summed in float32 and stored in `dtype`."""
    import mlx.core as mx
    import mlx.nn as nn

    linear = layer.linear
    weight = linear.weight
    if isinstance(linear, nn.QuantizedLinear):
        weight = mx.dequantize(weight, linear.scales, linear.biases, group_size=linear.group_size, bits=linear.bits, mode=linear.mode)
    delta = (layer.scale * layer.lora_b.astype(mx.float32).T) @ layer.lora_a.astype(mx.float32).T
    output_dims, input_dims = weight.shape
    fused = nn.Linear(input_dims, output_dims, bias="bias" in linear)
    fused.weight = (weight.astype(mx.float32) + delta).astype(dtype)
    if "bias" in linear:
        fused.bias = linear.bias
    return fused


def float_dtype(model):
    """The base's float type: its scales' when quantized (float16/bfloat16), else its weights'."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    for name, value in tree_flatten(model.parameters()):
        if "lora_" not in name and mx.issubdtype(value.dtype, mx.floating):
            return value.dtype
    raise FarenseError("o modelo não tem pesos em vírgula flutuante")


def fuse_model(model, config: dict, bits: int | None):
    """Merge every LoRA layer in place, dequantize the rest; re-quantize to `bits` if asked. Returns the new config."""
    import mlx.nn as nn
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model, quantize_model

    dtype = float_dtype(model)
    merged = [(name, merged_linear(module, dtype)) for name, module in model.named_modules() if hasattr(module, "lora_a")]
    if not merged:
        raise FarenseError("o adaptador não tem camadas LoRA: nada a fundir.")
    model.update_modules(tree_unflatten(merged))
    if any(isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding)) for _, m in model.named_modules()):
        dequantize_model(model)
    group_size = (config.get("quantization") or {}).get("group_size", QUANTIZATION_GROUP)  # the base's own grid, as mlx_lm.fuse
    config = {k: v for k, v in config.items() if k not in ("quantization", "quantization_config")}
    if bits:
        _, config = quantize_model(model, config, group_size, bits)
    return config, len(merged)


def compare(adapter_answers: list[str], fused_answers: list[str], items) -> dict:
    """Identical answers, and the F1 of each model against the reference, with bootstrap intervals."""
    identical = [a == f for a, f in zip(adapter_answers, fused_answers)]
    f1_adapter = [row["f1"] for row in generative_scores(adapter_answers, items)]
    f1_fused = [row["f1"] for row in generative_scores(fused_answers, items)]
    agreement = [metrics.token_scores(f, a).f1 for a, f in zip(adapter_answers, fused_answers)]
    return {
        "items": len(items),
        "identical": sum(identical),
        "match_share": sum(identical) / len(items),
        "f1_adapter": metrics.bootstrap_interval(f1_adapter).as_dict(),
        "f1_fused": metrics.bootstrap_interval(f1_fused).as_dict(),
        "f1_drop": (sum(f1_adapter) - sum(f1_fused)) / len(items),
        "agreement_f1": sum(agreement) / len(items),
    }


def check_markdown(check: dict) -> str:
    c = check["comparison"]
    verdict = "passou" if check["passed"] else "falhou: o modelo fundido não foi gravado"
    bits = f"re-quantizado a {check['bits']} bits" if check["bits"] else f"em {check['dtype']}, sem re-quantizar"
    return "\n".join([
        f"# Verificação da fusão: {check['run']}",
        "",
        f"Modelo fundido {bits}; {check['merged_layers']} projeções com LoRA somadas em float32. "
        f"Respostas greedy (até {check['max_tokens']} tokens) às {c['items']} perguntas de teste.",
        "",
        f"- respostas iguais às da base com o adaptador: {c['identical']} de {c['items']} ({pt(100 * c['match_share'], 1)} %)",
        f"- F1 médio entre as respostas dos dois: {pt(c['agreement_f1'], 3)}",
        f"- descida do F1: {pt(c['f1_drop'], 3)}",
        f"- tolerância: pelo menos {pt(100 * check['tolerance']['min_match'], 0)} % de respostas iguais e uma descida do F1 "
        f"de no máximo {pt(check['tolerance']['max_f1_drop'], 3)}",
        f"- resultado: **{verdict}**",
        "",
        "| | base + adaptador | modelo fundido |",
        "| --- | ---: | ---: |",
        f"| F1 médio (IC 95%) | {pt_mean_interval(c['f1_adapter'])} | {pt_mean_interval(c['f1_fused'])} |",
        "",
    ])


def verified_fused_model(run: RunFolder) -> Path | None:
    """The run's fused model if it exists, passed its check and was made from the current adapter."""
    provenance = run.fused / PROVENANCE
    if not provenance.is_file():
        return None
    recorded = read_json(provenance)
    adapter = run.adapters / "adapters.safetensors"
    return run.fused if recorded.get("passed") and recorded.get("adapter_sha256") == file_sha256(adapter) else None


def check_items(info: RunInfo, limit: int | None) -> list[Item]:
    """The test questions the check answers: the first `limit`, or all."""
    items = load_items(Path(info.profile.data) / "test.jsonl", limit)
    if not items:
        raise FarenseError(f"{info.profile.data}/test.jsonl não tem perguntas: não há com que verificar a fusão.")
    return items


@dataclass
class Fused:
    """What fusing and answering gave: both models' answers, the fused model's config and what was timed."""

    adapter_answers: list[str]
    fused_answers: list[str]
    config: dict
    merged: int
    dtype: str
    seconds: dict


def save_fused(model, tokenizer, base_folder: Path, bits: int | None, folder: Path) -> tuple[dict, int, str]:
    """Fuse `model` in place and save it with its tokenizer into `folder`; its config, merged layers and float type."""
    from mlx_lm.utils import save

    from farense_guide.chat_template import accepts_system, folding_template

    config, merged = fuse_model(model, read_json(base_folder / "config.json"), bits)
    dtype = str(float_dtype(model)).removeprefix("mlx.core.")
    if not accepts_system(tokenizer):  # the served model then takes the same system message as training
        tokenizer.chat_template = folding_template(tokenizer.chat_template)
    save(folder, base_folder, model, tokenizer, config, donate_model=True)
    return config, merged, dtype


def fuse_and_answer(info: RunInfo, adapter: Path, items: list[Item], bits: int | None, max_tokens: int, folder: Path) -> Fused:
    """Base + adapter answers the questions, is fused and saved into `folder`, and the model loaded back answers them too."""
    from mlx_lm import load

    conversations = [item.messages for item in items]
    seconds = {}
    with task_bars() as bars:
        model, tokenizer = load_run_model(info.profile, info.backend, adapter)
        start = time.perf_counter()
        adapter_answers = greedy_answers(model, tokenizer, conversations, max_tokens, bars.add("base + adaptador", len(items)))
        seconds["generate_adapter"] = time.perf_counter() - start

        start = time.perf_counter()
        config, merged, dtype = save_fused(model, tokenizer, Path(info.backend.model_path), bits, folder)
        del model
        seconds["fuse_and_save"] = time.perf_counter() - start

        fused, fused_tokenizer = load(str(folder))
        start = time.perf_counter()
        fused_answers = greedy_answers(fused, fused_tokenizer, conversations, max_tokens, bars.add("modelo fundido", len(items)))
        seconds["generate_fused"] = time.perf_counter() - start
        del fused
    return Fused(adapter_answers, fused_answers, config, merged, dtype, seconds)


def write_check(folder: Path, check: dict, items: list[Item], fused: Fused) -> None:
    """fuse_check.json, FUSE_CHECK.md and answers.jsonl (each question with both answers)."""
    write_json(folder / "fuse_check.json", check)
    safe_write(folder / "FUSE_CHECK.md", check_markdown(check))
    write_jsonl(folder / "answers.jsonl", [
        {"id": item.item_id, "question": item.question, "reference": item.reference,
         "adapter_answer": a, "fused_answer": f, "identical": a == f}
        for item, a, f in zip(items, fused.adapter_answers, fused.fused_answers)
    ])


def tolerance_error(comparison: dict, min_match: float, report: Path) -> FarenseError:
    """The error of a fuse whose answers moved beyond the tolerance."""
    return FarenseError(
        f"a fusão mudou demasiado as respostas: {comparison['identical']} de {comparison['items']} iguais "
        f"({pt(100 * comparison['match_share'], 1)} %, mínimo {pt(100 * min_match, 0)} %), F1 "
        f"{pt(comparison['f1_adapter']['mean'], 3)} → {pt(comparison['f1_fused']['mean'], 3)}; o modelo fundido não foi gravado.",
        f"o relatório está em {report}; sem --bits a soma fica em float e o aprendido não se perde",
    )


def check_output(output: Path) -> None:
    """The fused model replaces `output` at the end: only an earlier fused model (it has PROVENANCE) or an empty
    folder may be there, never a folder of the user's that --output named by mistake."""
    if output.exists() and not output.is_dir():
        raise FarenseError(f"{output}: já existe e não é uma pasta.")
    if output.is_dir() and any(output.iterdir()) and not (output / PROVENANCE).is_file():
        raise FarenseError(f"{output}: a pasta já existe, não está vazia e não é um modelo fundido por farense-guide fuse "
                           f"(falta {PROVENANCE}); não é apagada.", "escolha outra pasta com --output, ou uma pasta vazia")


def fuse_run(run_path: Path, output: Path | None = None, bits: int | None = None, limit: int | None = None, max_tokens: int = 96,
             min_match: float = DEFAULT_MIN_MATCH, max_f1_drop: float = DEFAULT_MAX_F1_DROP) -> dict:
    """Fuse the run's best adapter, check it on the test questions, keep it only if the check passes."""
    if bits is not None and bits not in BITS:
        raise FarenseError(f"--bits {bits}: use 2, 3, 4, 5, 6 ou 8.")
    run = RunFolder(run_path)
    info = run.read_info()
    check_trained(run, info)
    limit = limit or info.profile.eval_limit  # tiny runs check the questions their evaluation used
    items = check_items(info, limit)
    output = Path(output) if output else run.fused
    check_output(output)
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    fused = fuse_and_answer(info, run.adapters, items, bits, max_tokens, partial)
    comparison = compare(fused.adapter_answers, fused.fused_answers, items)
    check = {
        "run": info.name, "adapter_sha256": file_sha256(run.adapters / "adapters.safetensors"),
        "base": str(Path(info.backend.model_path)), "base_bits": info.backend.base_bits, "output": str(output),
        "bits": bits, "group_size": (fused.config.get("quantization") or {}).get("group_size"), "dtype": fused.dtype if not bits else None,
        "merged_layers": fused.merged, "max_tokens": max_tokens, "limit": limit,
        "tolerance": {"min_match": min_match, "max_f1_drop": max_f1_drop}, "comparison": comparison,
        "passed": comparison["match_share"] >= min_match and comparison["f1_drop"] <= max_f1_drop, "seconds": fused.seconds,
    }
    write_check(run.fuse_check(bits), check, items, fused)
    if not check["passed"]:
        shutil.rmtree(partial, ignore_errors=True)
        raise tolerance_error(comparison, min_match, run.fuse_check(bits) / "FUSE_CHECK.md")
    write_json(partial / PROVENANCE, {key: check[key] for key in ("run", "adapter_sha256", "base", "bits", "dtype", "passed")})
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)
    return check
