"""What each `farense-guide` subcommand does with its parsed arguments: call the step, print the outcome in pt-PT.

cli.py builds the parsers and points each subcommand at one of these functions. Heavy modules
(MLX, mlx-lm, matplotlib, reportlab) are imported inside the functions, so `--help` stays instant.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from farense_guide.config import SHORTCUTS
from farense_guide.errors import FarenseError
from farense_guide.pt_format import pt_difference, pt_p_value
from farense_guide.runs import RunFolder, RunInfo, RunStatus

DISTRIBUTED_FLAGS = ("--processes", "--hosts")


def run_preflight_command(args) -> int:
    from farense_guide.steps.preflight import print_report, run_preflight, write_report
    from farense_guide.config import load_profile

    report = run_preflight(load_profile(args.profile), runs_dir=args.output.parent)
    write_report(report, args.output)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report)
        print(f"Relatório gravado em {args.output}")
    return 1 if report["blocking"] else 0


def run_model_command(args) -> int:
    from farense_guide.inference import trained_base_folder
    from farense_guide.models import resolve_model

    run = RunFolder(args.spec)
    if run.exists():  # a run folder: its base, as training used it (the float32 copy where the CPU dequantized it)
        info = run.read_info()
        print(trained_base_folder(info.profile, info.backend))
    else:
        print(resolve_model(args.spec))
    return 0


def token_settings(args) -> tuple[str, int, object | None]:
    from farense_guide.config import load_profile
    from farense_guide.models import load_tokenizer

    profile = load_profile(args.profile)
    model = args.model or profile.model
    max_seq_length = args.max_seq_length or profile.max_seq_length
    tokenizer = None if getattr(args, "no_tokens", False) else load_tokenizer(model)
    return model, max_seq_length, tokenizer


def require_input(target: Path) -> None:
    if not target.exists():
        raise FarenseError(f"{target}: não existe.")


def run_validate_command(args) -> int:
    from farense_guide.data import validate

    require_input(args.target)
    model, max_seq_length, tokenizer = token_settings(args)
    result = validate.validate(args.target, tokenizer, max_seq_length)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_validation(result, model if tokenizer else None, max_seq_length)
    return 1 if result.problems else 0


def run_clean_command(args) -> int:
    from farense_guide.data import clean

    require_input(args.target)
    model, max_seq_length, tokenizer = token_settings(args)
    changes = clean.clean(args.target, args.output, args.system_prompt, tokenizer, max_seq_length, force=args.force)
    removed = sum(1 for c in changes if c.action == "removido")
    print(f"{len(changes)} alterações ({removed} exemplos ou linhas removidos); ficheiros limpos e relatório em {args.output}")
    return 0


def run_split_command(args) -> int:
    from farense_guide.data import split, validate

    require_input(args.target)
    result = validate.validate(args.target)
    if result.problems:
        print_validation(result, None, None)
        raise FarenseError("há problemas nos dados: corra primeiro «farense-guide data clean».")
    counts = split.split(args.target, args.output, args.seed, args.valid, args.test, force=args.force)
    print(", ".join(f"{name}.jsonl: {n}" for name, n in counts.items()) + f" (semente {args.seed}) em {args.output}")
    return 0


def run_stats_command(args) -> int:
    from farense_guide.data import stats, validate

    require_input(args.target)
    model, max_seq_length, tokenizer = token_settings(args)
    result = validate.validate(args.target, tokenizer, max_seq_length)
    if result.problems:
        print_validation(result, model, max_seq_length)
        raise FarenseError("há problemas nos dados: as estatísticas só se calculam sobre dados sem problemas.",
                           hint=f"farense-guide data clean {args.target} --output <pasta nova> escreve uma cópia sem eles")
    summary = stats.write_stats(result, args.output, model, max_seq_length)
    print(stats.markdown_table(summary))
    print(f"Estatísticas em {args.output}/stats.json, stats.md e token_lengths.png")
    if args.card:
        changed = stats.update_card(args.card, stats.markdown_table(summary))
        print(f"{args.card}: {'secção gerada atualizada' if changed else 'já estava atualizado'}")
    return 0


def print_validation(result, model: str | None, max_seq_length: int | None) -> None:
    for problem in result.problems:
        print(problem)
    counts = ", ".join(f"{name}: {n} exemplos" for name, n in result.counts().items())
    tokens = f"; tokens contados com {model} (max_seq_length={max_seq_length})" if model else ""
    print(f"{counts}{tokens}")
    if result.problems:
        lines = len({(p.path, p.line) for p in result.problems})
        print(f"{len(result.problems)} problemas em {lines} linhas.")
    else:
        print("Sem problemas.")


def run_train_command(args) -> int:
    from farense_guide.config import apply_overrides, load_profile
    from farense_guide.steps.train import TrainPlan, is_main_process, train

    if args.processes or args.hosts:
        return launch_claimed(args)
    if args.resume:
        run = RunFolder(args.resume)
        profile = run.read_info().profile
        if overrides_from(args):
            raise FarenseError("ao retomar, o perfil é o do run: não use --set nem atalhos.")
    else:
        profile = apply_overrides(load_profile(args.profile), overrides_from(args))
        run = RunFolder(args.runs_dir / (args.run_name or default_run_name(args.profile)))
        if run.exists():
            raise run.taken_error()
    info = train(TrainPlan(profile, run, quantized=args.quantized, resume=bool(args.resume)))  # claims the run folder first
    return report_end(info, run) if is_main_process() else 0


def launch_claimed(args) -> int:
    """A distributed run: this process, the launcher, holds the run folder's lock for as long as its ranks train
    (they do not take it: steps.train.claim)."""
    if args.resume is None and args.run_name is None:
        args.run_name = default_run_name(args.profile)
        args.argv = args.argv + ["--run-name", args.run_name]  # every rank gets the same name
    with RunFolder(args.resume or args.runs_dir / args.run_name).claimed(new=args.resume is None):
        return launch_distributed(args, args.argv)


def overrides_from(args) -> list[str]:
    """--set and the shortcut options, as `key=value` profile changes."""
    changes = list(args.set)
    for name, (key, _) in SHORTCUTS.items():
        value = getattr(args, name)
        if value is not None:
            changes.append(f"{key}={value}")
    if args.grad_checkpoint:
        changes.append("grad_checkpoint=true")
    return changes


def launch_distributed(args, argv: list[str]) -> int:
    """Re-run this command under mlx.launch (ring backend); each rank runs without the launch flags."""
    if args.resume is None and args.run_name is None:
        args.run_name = default_run_name(args.profile)
        argv = argv + ["--run-name", args.run_name]
    inner, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in DISTRIBUTED_FLAGS:
            skip = True
            continue
        if token.split("=", 1)[0] in DISTRIBUTED_FLAGS:
            continue
        inner.append(token)
    hosts = args.hosts or "127.0.0.1"
    repeat = str(args.processes or 1)
    launcher = "import sys; from mlx._distributed_utils.launch import main; sys.argv[0] = 'mlx.launch'; main()"
    command = [sys.executable, "-c", launcher, "--backend", "ring", "--hosts", hosts, "-n", repeat,
               "--", sys.executable, "-m", "farense_guide", *inner]
    print(f"Treino distribuído: mlx.launch {shlex.join(command[3:])}", file=sys.stderr)
    status = subprocess.call(command)  # the ranks inherit this process's environment, OpenBLAS included
    run = args.resume or args.runs_dir / args.run_name
    if status == 0 and not (Path(run) / "run.json").is_file():
        return 2  # every rank stopped before creating the run (its error is printed above); mlx.launch still exits 0
    return status


def default_run_name(profile: str) -> str:
    return f"{Path(profile).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def report_end(info: RunInfo, run: RunFolder) -> int:
    """What the terminal says when training ends; the exit status."""
    step = info.steps_done
    if info.status is RunStatus.INTERRUPTED:
        print(f"Treino interrompido no passo {step}; checkpoint gravado.\nPara retomar: farense-guide train --resume {run.path}",
              file=sys.stderr)
        return 130
    if info.status is RunStatus.FAILED_NAN:
        kept = run.checkpoint_steps()
        where = f"o último checkpoint bom é o do passo {kept[-1]}" if kept else "não havia checkpoint anterior"
        print(f"erro: a perda deixou de ser finita (NaN/inf) depois do passo {step}; treino parado e {where}.\n"
              "  sugestão: recomece com uma taxa de aprendizagem mais baixa (--learning-rate) num run novo (--run-name).", file=sys.stderr)
        return 1
    label = "terminado" if info.status is RunStatus.COMPLETED else "parado cedo (a perda de validação deixou de melhorar)"
    print(f"Treino {label}: {step} passos; melhor perda de validação {info.best.val_loss:.4f} no passo {info.best.step}.\n"
          f"Adaptadores em {run.best_adapter} (o melhor) e {run.last_adapter}"
          + (f", e um por época em {run.adapters}/epoch-N." if run.epoch_adapters() else "."))
    return 0



def run_monitor_command(args) -> int:
    from farense_guide.steps.monitor import monitor

    return monitor(args.run, args.once, args.interval)


def refuse_if_training(args, retry: str) -> None:
    """evaluate, report, fuse and export read a run's adapter and metrics: not while its training still changes them,
    unless --allow-running. `retry`: what the hint tells the user to do (pt-PT imperative, e.g. "avalie-o")."""
    holder = RunFolder(args.run).training_holder()
    if holder is None:
        return
    message = f"{args.run}: o treino deste run ainda está a decorrer ({holder}); o adaptador e as métricas ainda vão mudar."
    if not args.allow_running:
        raise FarenseError(message, f"espere que termine (farense-guide monitor {args.run}), ou {retry} mesmo assim com --allow-running")
    print(f"aviso: {message} A continuar, como pedido (--allow-running).", file=sys.stderr)


def run_evaluate_command(args) -> int:
    from farense_guide.steps.evaluate import evaluate_run

    refuse_if_training(args, "avalie-o")
    report = evaluate_run(args.run, args.limit, args.max_tokens)
    for name, label in (("base", "base"), ("tuned", "afinado")):
        summary = report[name]
        print(f"{label}: F1 {summary['f1']['mean']:.3f} [{summary['f1']['ci_low']:.3f}, {summary['f1']['ci_high']:.3f}] · "
              f"AUC {summary['auc']:.3f} · perplexidade {summary['perplexity']:.2f}")
    f1 = report["paired"]["metrics"]["f1"]
    print(f"afinado − base, nas mesmas perguntas: F1 {pt_difference(f1)} ({f1['test']}, {pt_p_value(f1['p_value'])})")
    print(f"Relatório em {RunFolder(args.run).evaluation}")
    return 0


def run_study_command(args) -> int:
    """The recipe study's table and figure from its run folders."""
    from farense_guide.study import build_study

    for path in build_study(args.folder, args.others):
        print(path)
    return 0


def run_compare_command(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from farense_guide.runs import write_json
    from farense_guide.steps.compare import compare_runs, comparison_note, comparison_rows, markdown_table

    result = compare_runs(args.first, args.second, args.variant)
    rows = comparison_rows(result)
    if sys.stdout.isatty():
        table = Table(*rows[0], title="B em relação a A, nas mesmas perguntas")
        for row in rows[1:]:
            table.add_row(*row)
        Console().print(table)
    else:  # a log or a pipe: a Markdown table, one line per metric, that no terminal width wraps
        print("\n".join(markdown_table(rows)))
    print(comparison_note(result).replace("`", ""))
    if args.json:
        write_json(args.json, result)
        print(f"Comparação gravada em {args.json}")
    return 0


def run_report_command(args) -> int:
    from farense_guide.report import build_report

    refuse_if_training(args, "gere o relatório")
    written = build_report(args.run, args.force)
    print(f"{len(written)} ficheiros gerados em {args.run}" if written else f"{args.run}: relatório já atualizado (nada a refazer)")
    return 0


def run_fragments_command(args) -> int:
    from farense_guide.book.fragments import choose_run, generate

    run = choose_run(args.run)
    written = generate(run, args.output, force=args.force)
    print(f"{len(written)} fragmentos do guia gerados em {args.output} a partir de {run}" if written
          else f"{args.output}: fragmentos já atualizados para {run} (nada a refazer)")
    return 0


def run_pdf_command(args) -> int:
    import time

    from farense_guide.book.fragments import generate
    from farense_guide.book.guide_source import generated_dir
    from farense_guide.book.pdf import build_pdf

    if args.run:
        generate(args.run, generated_dir(args.config))
    start = time.perf_counter()
    written = build_pdf(args.config, args.output, args.force)
    if written is None:
        print("PDF já atualizado (nada a refazer)")
    else:
        from pypdf import PdfReader

        print(f"{written}: {len(PdfReader(written).pages)} páginas em {time.perf_counter() - start:.1f} s")
    return 0


def run_chat_command(args) -> int:
    from farense_guide.steps.chat import DEFAULT_MODEL, chat, check_base_choice

    if args.question is not None and args.prompt is not None:
        raise FarenseError("indique a pergunta uma só vez (posicional ou --prompt).")
    if args.model is not None and args.adapter is not None:
        check_base_choice(args.model, args.adapter)
    # Only no question at all opens the conversation: an empty one ("") is refused as such.
    question = args.question if args.question is not None else args.prompt
    chat(args.model or DEFAULT_MODEL, args.adapter, question, args.system, args.max_tokens, args.base)
    return 0


def run_fuse_command(args) -> int:
    from farense_guide.steps.fuse import fuse_run

    refuse_if_training(args, "funda-o")
    check = fuse_run(args.run, args.output, args.bits, args.limit, args.max_tokens, args.min_match, args.max_f1_drop)
    c = check["comparison"]
    print(f"Respostas iguais: {c['identical']} de {c['items']} · F1 base + adaptador {c['f1_adapter']['mean']:.3f} · "
          f"F1 fundido {c['f1_fused']['mean']:.3f}")
    print(f"Modelo fundido em {check['output']}; verificação em {RunFolder(args.run).fuse_check(args.bits)}")
    return 0


def run_export_command(args) -> int:
    from farense_guide.steps.export import export_run

    if not args.gguf:
        raise FarenseError("indique o formato: --gguf (o único por agora).")
    refuse_if_training(args, "exporte-o")
    report = export_run(args.run, args.output)
    print(f"{report['gguf']}: {report['tensors']} tensores, {report['bytes'] / 1e6:.0f} MB; Modelfile em {report['modelfile']}")
    return 0
