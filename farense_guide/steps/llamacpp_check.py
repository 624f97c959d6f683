"""The exported GGUF in llama.cpp: does it answer as the fused MLX model does?

`nox -s llamacpp -- runs/<name>` (or `python -m farense_guide.steps.llamacpp_check runs/<name>`, with
llama-cpp-python installed) loads runs/<name>/export/*.gguf in llama.cpp through llama-cpp-python,
asks it the test questions with greedy decoding and the chat template stored in the GGUF, and
compares each answer with the fused MLX model's answer from the fuse check (fuse_check/answers.jsonl):
identical answers counted, the F1 of each against the reference. Written to
runs/<name>/export/llamacpp_check.json.

The GGUF holds float16 weights where the fused MLX model is float32 (on the CPU), so two answers can
part where two tokens are nearly tied. Where they part, the fused model answers again with its
weights in float16: if it then says what llama.cpp said, the difference is the precision, not the
export (which would change far more answers: a wrong tensor layout or tokenizer breaks them all).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from farense_guide import metrics
from farense_guide.bars import task_bars
from farense_guide.data.records import read_jsonl
from farense_guide.errors import FarenseError
from farense_guide.runs import RunFolder, file_sha256, write_json
from farense_guide.scoring import load_items


def exported_gguf(run: RunFolder) -> Path:
    found = sorted(run.export.glob("*.gguf")) if run.export.is_dir() else []
    if not found:
        raise FarenseError(f"{run.export}: não há GGUF exportado.", hint=f"farense-guide export {run.path} --gguf")
    return found[0]


def fused_answers(run: RunFolder) -> dict[str, str]:
    path = run.fuse_check() / "answers.jsonl"
    if not path.is_file():
        raise FarenseError(f"{path}: falta a verificação da fusão, com as respostas do modelo fundido.", hint=f"farense-guide fuse {run.path}")
    return {row["id"]: row["fused_answer"] for row in read_jsonl(path)}


def llamacpp_answer(llm, messages: list[dict], max_tokens: int) -> str:
    """Greedy: the most likely token each time (top_k 1, temperature 0), until end-of-turn or max_tokens."""
    response = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0,
                                          min_p=0.0, repeat_penalty=1.0, seed=0)
    return response["choices"][0]["message"]["content"].strip()


def compare_with_float16(run: RunFolder, items: list, differing: list[dict], max_tokens: int) -> None:
    """Where llama.cpp and the fused MLX model part, the fused model's answer with its weights cast to float16, as the
    GGUF holds them: the same as llama.cpp's says the difference is the precision, not the export."""
    import mlx.core as mx
    from mlx_lm import load

    from farense_guide.inference import greedy_answers
    from farense_guide.steps.fuse import verified_fused_model

    folder = verified_fused_model(run)
    if folder is None:
        return
    model, tokenizer = load(str(folder))
    model.set_dtype(mx.float16)
    by_id = {item.item_id: item for item in items}
    answers = greedy_answers(model, tokenizer, [by_id[row["id"]].messages for row in differing], max_tokens)
    for row, answer in zip(differing, answers):
        row.update(mlx_float16_answer=answer, same_as_mlx_float16=answer == row["llamacpp_answer"])


def check_run(run_path: Path, max_tokens: int = 96, limit: int | None = None, explain: bool = True) -> dict:
    try:
        import llama_cpp
    except ImportError:
        raise FarenseError("o llama-cpp-python não está instalado.", hint="nox -s llamacpp -- runs/<nome> (instala-o e corre esta verificação)") from None
    run = RunFolder(run_path)
    info = run.read_info()
    gguf, fused = exported_gguf(run), fused_answers(run)
    items = [item for item in load_items(Path(info.profile.data) / "test.jsonl", limit) if item.item_id in fused]
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=2048, n_threads=os.cpu_count(), seed=0, verbose=False)
    rows, began = [], time.perf_counter()
    with task_bars() as bars:
        advance = bars.add("llama.cpp", len(items))
        for item in items:
            answer = llamacpp_answer(llm, item.messages, max_tokens)
            rows.append({"id": item.item_id, "question": item.question, "reference": item.reference, "llamacpp_answer": answer,
                         "fused_answer": fused[item.item_id], "identical": answer == fused[item.item_id].strip(),
                         "f1_llamacpp": metrics.token_scores(answer, item.reference).f1,
                         "f1_fused": metrics.token_scores(fused[item.item_id], item.reference).f1})
            advance(1)
    identical = sum(row["identical"] for row in rows)
    differing = [row for row in rows if not row["identical"]]
    if differing and explain:
        compare_with_float16(run, items, differing, max_tokens)

    check = {"run": info.name, "gguf": str(gguf), "gguf_sha256": file_sha256(gguf), "llama_cpp_python": llama_cpp.__version__,
             "chat_template": "o do GGUF (tokenizer.chat_template)", "max_tokens": max_tokens, "items": len(rows),
             "identical": identical, "identical_share": identical / len(rows) if rows else None,
             "f1_llamacpp": sum(r["f1_llamacpp"] for r in rows) / len(rows), "f1_fused": sum(r["f1_fused"] for r in rows) / len(rows),
             "differing": len(differing),
             "differing_as_mlx_float16": sum(row.get("same_as_mlx_float16", False) for row in differing) if explain else None,
             "seconds": time.perf_counter() - began, "rows": rows}
    write_json(run.export / "llamacpp_check.json", check)
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m farense_guide.steps.llamacpp_check",
                                     description="Carrega o GGUF exportado de um run no llama.cpp (llama-cpp-python), responde às "
                                     "perguntas de teste com descodificação gananciosa (greedy) e compara com as respostas do modelo fundido "
                                     "do MLX. Escreve runs/<nome>/export/llamacpp_check.json.")
    parser.add_argument("run", type=Path, help="pasta do run, com export/*.gguf e fuse_check/")
    parser.add_argument("--max-tokens", type=int, default=96, help="máximo de tokens por resposta (por omissão: 96, como a fusão)")
    parser.add_argument("--limit", type=int, help="só as primeiras N perguntas de teste")
    parser.add_argument("--no-float16", dest="explain", action="store_false",
                        help="não responde de novo, com o modelo fundido em float16, onde as respostas diferem")
    args = parser.parse_args(argv)
    try:
        check = check_run(args.run, args.max_tokens, args.limit, args.explain)
    except FarenseError as error:
        print(f"erro: {error}", file=sys.stderr)
        return 2
    print(f"llama.cpp contra o modelo fundido do MLX: {check['identical']} de {check['items']} respostas iguais; "
          f"F1 {check['f1_llamacpp']:.3f} (llama.cpp) e {check['f1_fused']:.3f} (MLX). Em {args.run}/export/llamacpp_check.json")
    if check["differing_as_mlx_float16"] is not None and check["differing"]:
        print(f"Das {check['differing']} diferentes, o modelo fundido em float16 dá a resposta do llama.cpp em {check['differing_as_mlx_float16']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
