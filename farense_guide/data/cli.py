"""`farense-guide data validate|clean|split|stats`."""

from __future__ import annotations

import json
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.config import default_profile_name

DEFAULT_DATA = Path("data")


def add_data_commands(commands, parser_class) -> None:
    data = commands.add_parser(
        "data",
        help="valida, limpa, divide e descreve os dados JSONL",
        description="O passo dos dados. Formatos aceites por linha: {\"messages\": [...]} (chat), "
        "{\"prompt\", \"completion\"}, {\"text\"} e {\"question\", \"answer\"} (convertido para chat).",
    )
    actions = data.add_subparsers(dest="data_command", title="ações", metavar="AÇÃO", parser_class=parser_class, required=True,
                                  help="o que fazer aos dados")

    validate = actions.add_parser("validate", help="lista todos os problemas, com ficheiro e linha",
                                  description="Valida uma pasta (train/valid/test.jsonl) ou um ficheiro JSONL e lista todos os "
                                  "problemas com ficheiro e linha. Sai com 1 se houver problemas.")
    validate.add_argument("target", nargs="?", type=Path, default=DEFAULT_DATA, help="pasta ou ficheiro .jsonl (por omissão: data)")
    add_token_options(validate)
    validate.add_argument("--json", action="store_true", help="escreve o resultado em JSON")

    clean = actions.add_parser("clean", help="escreve cópias limpas noutra pasta, com relatório",
                               description="Escreve cópias limpas dos ficheiros numa pasta nova e um relatório "
                               "(clean_report.json e .md) do que foi removido ou alterado e porquê. A entrada nunca é alterada.")
    clean.add_argument("target", type=Path, help="pasta ou ficheiro .jsonl de entrada")
    clean.add_argument("--output", type=Path, required=True, help="pasta de saída (não pode ser a de entrada)")
    clean.add_argument("--system-prompt", help="mensagem de sistema a pôr nos pares question/answer convertidos para chat")
    add_token_options(clean)

    split = actions.add_parser("split", help="divide em train/valid/test de forma determinística",
                               description="Divide os exemplos em train.jsonl, valid.jsonl e test.jsonl; a mesma semente dá "
                               "sempre os mesmos ficheiros, e perguntas iguais (normalizadas) ficam no mesmo conjunto.")
    split.add_argument("target", type=Path, help="ficheiro .jsonl (ou pasta) com todos os exemplos")
    split.add_argument("--output", type=Path, required=True, help="pasta de saída")
    split.add_argument("--seed", type=int, default=0, help="semente (por omissão: 0)")
    split.add_argument("--valid", type=float, default=0.1, help="fração para validação (por omissão: 0.1)")
    split.add_argument("--test", type=float, default=0.1, help="fração para teste (por omissão: 0.1)")

    stats = actions.add_parser("stats", help="contagens e tokens por exemplo: JSON, Markdown e histograma",
                               description="Escreve stats.json, stats.md e token_lengths.png com contagens e percentis de "
                               "tokens por exemplo (tokenizador do modelo do perfil).")
    stats.add_argument("target", nargs="?", type=Path, default=DEFAULT_DATA, help="pasta de dados (por omissão: data)")
    stats.add_argument("--output", type=Path, default=Path("runs/data-stats"), help="pasta de saída (por omissão: runs/data-stats)")
    stats.add_argument("--card", type=Path, help="cartão de dados cuja secção gerada é atualizada (p. ex. data/README.md)")
    add_token_options(stats, allow_skip=False)


def add_token_options(parser, allow_skip: bool = True) -> None:
    parser.add_argument("--profile", default=default_profile_name(),
                        help="perfil de onde vêm o modelo e max_seq_length (por omissão: smollm2, ou o da variável FARENSE_PROFILE)")
    parser.add_argument("--model", help="modelo cujo tokenizador conta os tokens (por omissão: o do perfil)")
    parser.add_argument("--max-seq-length", type=int, help="limite de tokens por exemplo (por omissão: o do perfil)")
    if allow_skip:
        parser.add_argument("--no-tokens", action="store_true", help="não conta tokens (mais rápido, sem carregar o tokenizador)")


def token_settings(args) -> tuple[str, int, object | None]:
    from farense_guide.models import load_tokenizer
    from farense_guide.config import load_profile

    profile = load_profile(args.profile)
    model = args.model or profile.model
    max_seq_length = args.max_seq_length or profile.max_seq_length
    tokenizer = None if getattr(args, "no_tokens", False) else load_tokenizer(model)
    return model, max_seq_length, tokenizer


def require_input(target: Path) -> None:
    if not target.exists():
        raise FarenseError(f"{target}: não existe.")


def run_data_command(args) -> int:
    from farense_guide.data import clean, split, stats, validate

    require_input(args.target)
    if args.data_command == "validate":
        model, max_seq_length, tokenizer = token_settings(args)
        result = validate.validate(args.target, tokenizer, max_seq_length)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            print_validation(result, model if tokenizer else None, max_seq_length)
        return 1 if result.problems else 0
    if args.data_command == "clean":
        model, max_seq_length, tokenizer = token_settings(args)
        changes = clean.clean(args.target, args.output, args.system_prompt, tokenizer, max_seq_length)
        removed = sum(1 for c in changes if c.action == "removido")
        print(f"{len(changes)} alterações ({removed} exemplos ou linhas removidos); ficheiros limpos e relatório em {args.output}")
        return 0
    if args.data_command == "split":
        result = validate.validate(args.target)
        if result.problems:
            print_validation(result, None, None)
            raise FarenseError("há problemas nos dados: corra primeiro «farense-guide data clean».")
        counts = split.split(args.target, args.output, args.seed, args.valid, args.test)
        print(", ".join(f"{name}.jsonl: {n}" for name, n in counts.items()) + f" (semente {args.seed}) em {args.output}")
        return 0
    model, max_seq_length, tokenizer = token_settings(args)
    result = validate.validate(args.target, tokenizer, max_seq_length)
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
