"""`farense-guide` / `python -m farense_guide`: one subcommand per step, help and errors in pt-PT."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from farense_guide import __version__, blas
from farense_guide.data.cli import add_data_commands, run_data_command
from farense_guide.errors import FarenseError
from farense_guide.config import default_profile_name
from farense_guide.train_cli import add_train_commands, run_train_command

# Commands that import MLX and so want OpenBLAS preloaded on Linux.
MLX_COMMANDS = {"preflight", "model", "chat", "train", "evaluate", "fuse", "export"}

ARGPARSE_MESSAGES = {
    "the following arguments are required: AÇÃO": "falta a ação (validate, clean, split ou stats)",
    "argument ": "argumento ",
    "the following arguments are required": "faltam argumentos obrigatórios",
    "invalid choice": "escolha inválida",
    "choose from": "escolha entre",
    "unrecognized arguments": "argumentos não reconhecidos",
    "expected one argument": "espera um valor",
    "invalid int value": "número inteiro inválido",
    "invalid float value": "número inválido",
}


class PortugueseHelpFormatter(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, "utilização: " if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """argparse with pt-PT section titles, help flag and error messages."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", PortugueseHelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "argumentos"
        self._optionals.title = "opções"
        self.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")

    def error(self, message):
        for english, portuguese in ARGPARSE_MESSAGES.items():
            message = message.replace(english, portuguese)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: erro: {message}\n")


def add_preflight(commands) -> None:
    parser = commands.add_parser(
        "preflight",
        help="verifica se a máquina está pronta para treinar",
        description="Verifica Python, sistema, MLX e dispositivo, memória, disco, alimentação (macOS), "
        "BLAS (Linux), o modelo base e a memória estimada do treino.\n"
        "Sai com código diferente de zero só quando há problemas bloqueantes.",
    )
    parser.add_argument("--profile", default=default_profile_name(), help="perfil de treino (smollm2, tiny, m1-16gb ou um .yaml); por omissão: smollm2, ou o da variável FARENSE_PROFILE")
    parser.add_argument("--json", action="store_true", help="escreve o relatório em JSON no ecrã em vez da tabela")
    parser.add_argument("--output", type=Path, default=Path("runs/preflight.json"), help="ficheiro JSON do relatório (por omissão: runs/preflight.json)")


def add_model(commands) -> None:
    parser = commands.add_parser(
        "model",
        help="prepara e mostra modelos base",
        description="Converte o SmolLM2 embutido para MLX (uma vez, em cache), gera o modelo minúsculo de testes "
        "ou resolve um modelo local ou do Hugging Face, e mostra a pasta.",
    )
    parser.add_argument("spec", nargs="?", default="smollm2", help="smollm2, tiny, tiny-4bit, uma pasta, um id 'organização/nome' ou a pasta de um run (o seu modelo base); por omissão: smollm2")


def add_chat(commands) -> None:
    from farense_guide.data.records import FARENSE_SYSTEM_PROMPT

    parser = commands.add_parser(
        "chat",
        help="conversa com o modelo (com ou sem adaptador)",
        description="Conversa com o modelo base ou com um adaptador treinado, com a mensagem de sistema do conjunto de "
        "dados e as respostas a aparecer à medida que são geradas. Com uma pergunta responde e sai; sem ela abre "
        "uma conversa no terminal. --base mostra também a resposta do modelo base, para comparar.",
    )
    parser.add_argument("question", nargs="?", help="a pergunta; sem ela, modo de conversa")
    parser.add_argument("--prompt", "-p", dest="prompt", help="o mesmo que a pergunta posicional")
    parser.add_argument("--model", default="smollm2", help="modelo base (por omissão: smollm2; com --adapter, o do adaptador)")
    parser.add_argument("--adapter", type=Path, help="pasta de adaptadores ou de um run (p. ex. runs/<nome>)")
    parser.add_argument("--base", action="store_true", help="responde também com o modelo base, sem o adaptador")
    parser.add_argument("--system", default=FARENSE_SYSTEM_PROMPT, help="mensagem de sistema (por omissão: a do conjunto de dados)")
    parser.add_argument("--no-system", dest="system", action="store_const", const=None,
                        help="sem mensagem de sistema (usa a do modelo)")
    parser.add_argument("--max-tokens", type=int, default=200, help="máximo de tokens por resposta (por omissão: 200)")


def add_evaluate(commands) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="avalia um run: o modelo afinado contra o base, no conjunto de teste",
        description="Respostas gulosas (geração em lote do mlx-lm) avaliadas com exact match, precisão, recall, F1 e ROUGE-L "
        "contra a resposta de referência; verosimilhança da resposta certa contra respostas de outras perguntas (ROC, AUC, "
        "top-1, matriz de confusão com o limiar escolhido na validação); perplexidade; recusas fora do âmbito. "
        "Escreve runs/<nome>/evaluation/.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--limit", type=int, help="avalia só as primeiras N perguntas de cada conjunto (para ensaios rápidos)")
    parser.add_argument("--max-tokens", type=int, default=96, help="máximo de tokens por resposta (por omissão: 96)")


def add_report(commands) -> None:
    parser = commands.add_parser(
        "report",
        help="gera as figuras e tabelas de um run a partir do seu JSON",
        description="Gera runs/<nome>/figures/*.png, runs/<nome>/tables/*.md e evaluation/EVALUATION_REPORT.md a partir de "
        "run.json, metrics.jsonl e evaluation_report.json. Sem alterações nas entradas não refaz nada.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--force", action="store_true", help="refaz tudo mesmo que nada tenha mudado")


def add_fragments(commands) -> None:
    parser = commands.add_parser(
        "fragments",
        help="gera os valores, tabelas e figuras que o guia mostra, a partir de um run",
        description="Escreve guide/_generated/ (values.json, tabelas, figuras, a faixa do run e a tabela de memória do M1) "
        "a partir de runs/reference ou do run indicado. Sem alterações nas entradas não refaz nada.",
    )
    parser.add_argument("--run", type=Path, help="pasta do run (por omissão: runs/reference)")
    parser.add_argument("--output", type=Path, default=Path("guide/_generated"), help="pasta de saída (por omissão: guide/_generated)")
    parser.add_argument("--force", action="store_true", help="refaz tudo mesmo que nada tenha mudado")


def add_pdf(commands) -> None:
    parser = commands.add_parser(
        "pdf",
        help="gera o guia num só PDF, a partir dos mesmos capítulos que o site",
        description="Lê a ordem dos capítulos de mkdocs.yml, resolve os mesmos snippets e valores que o site e escreve "
        "guide/_generated/GUIA_COMPLETO_LLM_MLX_M1.pdf (capa, índice com páginas, marcadores, cabeçalhos). Os valores vêm "
        "de guide/_generated/: com --run, gera-os primeiro a partir desse run. Sem alterações não refaz nada.",
    )
    parser.add_argument("--run", type=Path, help="gera primeiro os fragmentos do guia a partir deste run (como `fragments --run`)")
    parser.add_argument("--config", type=Path, default=Path("mkdocs.yml"), help="configuração do MkDocs (por omissão: mkdocs.yml)")
    parser.add_argument("--output", type=Path, help="ficheiro PDF (por omissão: guide/_generated/GUIA_COMPLETO_LLM_MLX_M1.pdf)")
    parser.add_argument("--force", action="store_true", help="refaz o PDF mesmo que nada tenha mudado")


def add_fuse(commands) -> None:
    from farense_guide.steps.fuse import DEFAULT_MAX_F1_DROP, DEFAULT_MIN_MATCH

    parser = commands.add_parser(
        "fuse",
        help="funde o adaptador de um run no modelo base e verifica o resultado",
        description="Desquantiza cada camada adaptada, soma-lhe o LoRA em float32 e grava um modelo completo em "
        "runs/<nome>/fused/ (em float, sem re-quantizar, salvo --bits). Depois compara as respostas gulosas do modelo "
        "fundido com as da base com o adaptador, nas perguntas de teste, e escreve runs/<nome>/fuse_check/. Se a fusão "
        "mudar as respostas para lá da tolerância, falha e não grava o modelo.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--output", type=Path, metavar="PASTA", help="pasta do modelo fundido (por omissão: runs/<nome>/fused)")
    parser.add_argument("--bits", type=int, metavar="N", help="re-quantiza o modelo fundido (p. ex. 4); a verificação mostra o que se perde")
    parser.add_argument("--limit", type=int, metavar="N", help="verifica só as primeiras N perguntas de teste")
    parser.add_argument("--max-tokens", type=int, default=96, metavar="N", help="máximo de tokens por resposta (por omissão: 96)")
    parser.add_argument("--min-match", type=float, default=DEFAULT_MIN_MATCH, metavar="FRAÇÃO",
                        help=f"fração mínima de respostas iguais (por omissão: {DEFAULT_MIN_MATCH})")
    parser.add_argument("--max-f1-drop", type=float, default=DEFAULT_MAX_F1_DROP, metavar="VALOR",
                        help=f"descida máxima do F1 médio (por omissão: {DEFAULT_MAX_F1_DROP})")


def add_export(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="exporta o modelo fundido de um run para GGUF (llama.cpp, Ollama), com um Modelfile",
        description="Funde primeiro, se ainda não houver um modelo fundido verificado deste adaptador; depois escreve "
        "runs/<nome>/export/<nome>-f16.gguf (float16, tokenizador e molde de chat incluídos), um Modelfile do Ollama com "
        "o molde e a mensagem de sistema dos dados, e export.json.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--gguf", action="store_true", help="formato GGUF (o único por agora)")
    parser.add_argument("--output", type=Path, metavar="PASTA", help="pasta de saída (por omissão: runs/<nome>/export)")


def build_parser() -> Parser:
    parser = Parser(
        prog="farense-guide",
        description="Fine-tuning de um modelo de linguagem num Apple M1 de 16 GB com MLX: "
        "o exemplo do Sporting Clube Farense, do início ao fim.",
    )
    parser.add_argument("--version", action="version", version=f"farense-guide {__version__}", help="mostra a versão e sai")
    commands = parser.add_subparsers(dest="command", title="comandos", metavar="COMANDO", parser_class=Parser, help="o passo a correr")
    add_preflight(commands)
    add_model(commands)
    add_chat(commands)
    add_data_commands(commands, Parser)
    add_train_commands(commands)
    add_evaluate(commands)
    add_report(commands)
    add_fragments(commands)
    add_pdf(commands)
    add_fuse(commands)
    add_export(commands)
    return parser


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
    from farense_guide.models import resolve_model

    spec = args.spec
    if (Path(spec) / "run.json").is_file():  # a run folder: its base model
        spec = json.loads((Path(spec) / "run.json").read_text(encoding="utf-8"))["profile"]["model"]
    print(resolve_model(spec))
    return 0


def run_chat_command(args) -> int:
    from farense_guide.steps.chat import chat

    if args.question and args.prompt:
        raise FarenseError("indique a pergunta uma só vez (posicional ou --prompt).")
    chat(args.model, args.adapter, args.question or args.prompt, args.system, args.max_tokens, args.base)
    return 0


def run_evaluate_command(args) -> int:
    from farense_guide.steps.evaluate import evaluate_run

    report = evaluate_run(args.run, args.limit, args.max_tokens)
    for name, label in (("base", "base"), ("tuned", "afinado")):
        summary = report[name]
        print(f"{label}: F1 {summary['f1']['mean']:.3f} [{summary['f1']['ci_low']:.3f}, {summary['f1']['ci_high']:.3f}] · "
              f"AUC {summary['auc']:.3f} · perplexidade {summary['perplexity']:.2f}")
    print(f"Relatório em {args.run / 'evaluation'}")
    return 0


def run_report_command(args) -> int:
    from farense_guide.report import build_report

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


def run_monitor_command(args) -> int:
    from farense_guide.steps.monitor import monitor

    return monitor(args.run, args.once, args.interval)


def run_fuse_command(args) -> int:
    from farense_guide.steps.fuse import check_folder, fuse_run

    check = fuse_run(args.run, args.output, args.bits, args.limit, args.max_tokens, args.min_match, args.max_f1_drop)
    c = check["comparison"]
    print(f"Respostas iguais: {c['identical']} de {c['items']} · F1 base + adaptador {c['f1_adapter']['mean']:.3f} · "
          f"F1 fundido {c['f1_fused']['mean']:.3f}")
    print(f"Modelo fundido em {check['output']}; verificação em {check_folder(args.run, args.bits)}")
    return 0


def run_export_command(args) -> int:
    from farense_guide.steps.export import export_run

    if not args.gguf:
        raise FarenseError("indique o formato: --gguf (o único por agora).")
    report = export_run(args.run, args.output)
    print(f"{report['gguf']}: {report['tensors']} tensores, {report['bytes'] / 1e6:.0f} MB; Modelfile em {report['modelfile']}")
    return 0


HANDLERS = {
    "preflight": run_preflight_command, "model": run_model_command, "chat": run_chat_command, "data": run_data_command,
    "train": lambda args: run_train_command(args, ARGV), "monitor": run_monitor_command, "evaluate": run_evaluate_command,
    "report": run_report_command, "fragments": run_fragments_command, "pdf": run_pdf_command,
    "fuse": run_fuse_command, "export": run_export_command,
}
ARGV: list[str] = []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ARGV[:] = argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in MLX_COMMANDS:
        status = blas.rerun_with_openblas(argv)
        if status is not None:
            return status
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" banner
    try:
        return HANDLERS[args.command](args)
    except FarenseError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrompido.", file=sys.stderr)
        return 130
