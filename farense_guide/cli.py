"""`farense-guide` / `python -m farense_guide`: the parsers, in pt-PT. Each subcommand registers itself once,
with `set_defaults(handler=..., uses_mlx=...)`; commands.py holds what the handlers do.

argparse's own messages ("usage:", "invalid choice", ...) go through gettext: argparse calls `_()` on
each of them, and a pt-PT catalogue keyed by argparse's msgids answers. A message CPython rewords
falls back to English rather than to half-translated text, and tests/test_cli.py checks that every
msgid in the catalogue is still one argparse uses.
"""

from __future__ import annotations

import argparse
import gettext
import os
import sys
from pathlib import Path

from farense_guide import __version__, blas, commands
from farense_guide.config import SHORTCUTS, available_profiles, default_profile_name, describe_keys
from farense_guide.errors import FarenseError

DEFAULT_DATA = Path("data")

# argparse msgid -> pt-PT, for the messages a user of this CLI can meet.
ARGPARSE_PT = {
    "usage: ": "utilização: ",
    "positional arguments": "argumentos",
    "options": "opções",
    "show this help message and exit": "mostra esta ajuda e sai",
    "argument %(argument_name)s: %(message)s": "argumento %(argument_name)s: %(message)s",
    "the following arguments are required: %s": "faltam argumentos obrigatórios: %s",
    "invalid choice: %(value)r (choose from %(choices)s)": "escolha inválida: %(value)r (escolha entre %(choices)s)",
    "unrecognized arguments: %s": "argumentos não reconhecidos: %s",
    "expected one argument": "espera um valor",
    "expected at most one argument": "espera no máximo um valor",
    "expected at least one argument": "espera pelo menos um valor",
    "invalid %(type)s value: %(value)r": "%(type)s inválido: %(value)r",
    "not allowed with argument %s": "não pode ser usado com o argumento %s",
    "one of the arguments %s is required": "é preciso um dos argumentos %s",
    "ambiguous option: %(option)s could match %(matches)s": "opção ambígua: %(option)s pode ser %(matches)s",
    "ignored explicit argument %r": "argumento explícito ignorado: %r",
    "%(prog)s: error: %(message)s\n": "%(prog)s: erro: %(message)s\n",
}


class PortugueseArgparse(gettext.NullTranslations):
    """A gettext catalogue for argparse's messages; what it does not know stays as argparse wrote it."""

    def gettext(self, message):
        return ARGPARSE_PT.get(message, message)

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)


def translate_argparse() -> None:
    """argparse looks up `_` and `ngettext` in its module namespace at call time: point them at the catalogue."""
    catalogue = PortugueseArgparse()
    argparse._ = catalogue.gettext
    argparse.ngettext = catalogue.ngettext


def integer_argument(text: str) -> int:
    return int(text)


def number_argument(text: str) -> float:
    return float(text)


integer_argument.__name__ = "número inteiro"  # argparse names the type in "invalid %(type)s value"
number_argument.__name__ = "número"
ARGUMENT_TYPES = {int: integer_argument, float: number_argument, str: str}


class Parser(argparse.ArgumentParser):
    """argparse with a pt-PT section for the commands and the help flag's text (from the catalogue)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def add_preflight(subcommands) -> None:
    parser = subcommands.add_parser(
        "preflight",
        help="verifica se a máquina está pronta para treinar",
        description="Verifica Python, sistema, MLX e dispositivo, memória, disco, alimentação (macOS), "
        "BLAS (Linux), o modelo base e a memória estimada do treino.\n"
        "Sai com código diferente de zero só quando há problemas bloqueantes.",
    )
    parser.add_argument("--profile", default=default_profile_name(), help=f"perfil de treino ({', '.join(available_profiles())} ou um .yaml); por omissão: smollm2, ou o da variável FARENSE_PROFILE")
    parser.add_argument("--json", action="store_true", help="escreve o relatório em JSON no ecrã em vez da tabela")
    parser.add_argument("--output", type=Path, default=Path("runs/preflight.json"), help="ficheiro JSON do relatório (por omissão: runs/preflight.json)")
    parser.set_defaults(handler=commands.run_preflight_command, uses_mlx=True)



def add_model(subcommands) -> None:
    parser = subcommands.add_parser(
        "model",
        help="prepara e mostra modelos base",
        description="Converte o SmolLM2 embutido para MLX (uma vez, em cache), gera o modelo minúsculo de testes "
        "ou resolve um modelo local ou do Hugging Face, e mostra a pasta.",
    )
    parser.add_argument("spec", nargs="?", default="smollm2", help="smollm2, tiny, tiny-4bit, uma pasta, um id 'organização/nome' ou a pasta de um run (o seu modelo base como o treino o usou: em float32 se o CPU o desquantizou); por omissão: smollm2")
    parser.set_defaults(handler=commands.run_model_command, uses_mlx=True)



def add_chat(subcommands) -> None:
    from farense_guide.data.records import FARENSE_SYSTEM_PROMPT

    parser = subcommands.add_parser(
        "chat",
        help="conversa com o modelo (com ou sem adaptador)",
        description="Conversa com o modelo base ou com um adaptador treinado, com a mensagem de sistema do conjunto de "
        "dados e as respostas a aparecer à medida que são geradas. Com uma pergunta responde e sai; sem ela abre "
        "uma conversa no terminal. --base mostra também a resposta do modelo base, para comparar.",
    )
    parser.add_argument("question", nargs="?", help="a pergunta; sem ela, modo de conversa")
    parser.add_argument("--prompt", "-p", dest="prompt", help="o mesmo que a pergunta posicional")
    parser.add_argument("--model", help="modelo base (por omissão: smollm2; com --adapter, o do adaptador, e só esse)")
    parser.add_argument("--adapter", type=Path, help="pasta de adaptadores ou de um run (p. ex. runs/<nome>)")
    parser.add_argument("--base", action="store_true", help="responde também com o modelo base, sem o adaptador")
    parser.add_argument("--system", default=FARENSE_SYSTEM_PROMPT, help="mensagem de sistema (por omissão: a do conjunto de dados)")
    parser.add_argument("--no-system", dest="system", action="store_const", const=None,
                        help="sem mensagem de sistema (usa a do modelo)")
    parser.add_argument("--max-tokens", type=integer_argument, default=200, help="máximo de tokens por resposta (por omissão: 200)")
    parser.set_defaults(handler=commands.run_chat_command, uses_mlx=True)



def add_evaluate(subcommands) -> None:
    parser = subcommands.add_parser(
        "evaluate",
        help="avalia um run: o modelo afinado contra o base, no conjunto de teste",
        description="Respostas por descodificação gananciosa (greedy; geração em lote do mlx-lm) avaliadas com exact match, "
        "precisão, recall, F1 e ROUGE-L contra a resposta de referência; verosimilhança da resposta certa contra respostas de "
        "outras perguntas (ROC, AUC, top-1, matriz de confusão com o limiar escolhido na validação); perplexidade; recusas fora "
        "do âmbito. Escreve runs/<nome>/evaluation/.\n"
        "Aceita também um adaptador treinado só com o mlx-lm: uma pasta sem run.json cujo adapters/ o mlx_lm.lora escreveu "
        "(--adapter-path <pasta>/adapters); o run.json é feito a partir do adapter_config.json.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>, ou uma pasta cujo adapters/ o mlx_lm.lora escreveu")
    parser.add_argument("--limit", type=integer_argument, help="avalia só as primeiras N perguntas de cada conjunto (para ensaios rápidos)")
    parser.add_argument("--max-tokens", type=integer_argument, default=96, help="máximo de tokens por resposta (por omissão: 96)")
    parser.add_argument("--allow-running", action="store_true", help="avalia mesmo que o treino do run ainda esteja a decorrer")
    parser.set_defaults(handler=commands.run_evaluate_command, uses_mlx=True)



def add_compare(subcommands) -> None:
    parser = subcommands.add_parser(
        "compare",
        help="compara dois runs avaliados, pergunta a pergunta (diferença emparelhada e valor p)",
        description="Emparelha as perguntas de teste que os dois runs avaliaram (por id, no mesmo ficheiro de teste) e dá, "
        "métrica a métrica, B − A com o intervalo de 95% por bootstrap emparelhado e o valor p (McNemar exato nas métricas de "
        "sim/não, bootstrap emparelhado nas outras e na AUC). «Melhor» ou «pior» só com p < 0,05.",
    )
    parser.add_argument("first", type=Path, metavar="A", help="pasta do primeiro run (a referência da comparação)")
    parser.add_argument("second", type=Path, metavar="B", help="pasta do segundo run")
    parser.add_argument("--variant", choices=("tuned", "base"), default="tuned", help="que modelo de cada run comparar (por omissão: tuned, o afinado)")
    parser.add_argument("--json", type=Path, help="grava também a comparação neste ficheiro JSON")
    parser.set_defaults(handler=commands.run_compare_command, uses_mlx=False)


def add_study(subcommands) -> None:
    parser = subcommands.add_parser(
        "study",
        help="tabela e figura do estudo da receita (runs/study): qualidade contra minutos de treino no CPU",
        description="Lê cada run terminado da pasta (uma variação do perfil por run) e escreve study.json, study.csv e study.png: "
        "a perda de validação, o F1, a AUC e as recusas no teste (dos runs avaliados) e os minutos de treino no CPU, medidos nos "
        "runs feitos no CPU e estimados nos outros a partir dos runs curtos de calibration/ (segundos por passo no CPU).",
    )
    parser.add_argument("folder", type=Path, nargs="?", default=Path("runs/study"), help="pasta do estudo (por omissão: runs/study)")
    parser.add_argument("--with", dest="others", type=Path, action="append", default=[], metavar="RUN",
                        help="junta este run à tabela (por exemplo runs/reference, a receita de hoje); repetível")
    parser.set_defaults(handler=commands.run_study_command, uses_mlx=False)


def add_report(subcommands) -> None:
    parser = subcommands.add_parser(
        "report",
        help="gera as figuras e tabelas de um run a partir do seu JSON",
        description="Gera runs/<nome>/figures/*.png, runs/<nome>/tables/*.md e evaluation/EVALUATION_REPORT.md a partir de "
        "run.json, metrics.jsonl e evaluation_report.json. Sem alterações nas entradas não refaz nada.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--force", action="store_true", help="refaz tudo mesmo que nada tenha mudado")
    parser.add_argument("--allow-running", action="store_true", help="gera o relatório mesmo que o treino do run ainda esteja a decorrer")
    parser.set_defaults(handler=commands.run_report_command, uses_mlx=False)



def add_fragments(subcommands) -> None:
    parser = subcommands.add_parser(
        "fragments",
        help="gera os valores, tabelas e figuras que o guia mostra, a partir de um run",
        description="Escreve guide/_generated/ (values.json, tabelas, figuras, a faixa do run e a tabela de memória do M1) "
        "a partir de runs/reference ou do run indicado. Sem alterações nas entradas não refaz nada.",
    )
    parser.add_argument("--run", type=Path, help="pasta do run (por omissão: runs/reference)")
    parser.add_argument("--output", type=Path, default=Path("guide/_generated"), help="pasta de saída (por omissão: guide/_generated)")
    parser.add_argument("--force", action="store_true", help="refaz tudo mesmo que nada tenha mudado")
    parser.set_defaults(handler=commands.run_fragments_command, uses_mlx=False)



def add_pdf(subcommands) -> None:
    parser = subcommands.add_parser(
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
    parser.set_defaults(handler=commands.run_pdf_command, uses_mlx=False)



def add_fuse(subcommands) -> None:
    from farense_guide.steps.fuse import DEFAULT_MAX_F1_DROP, DEFAULT_MIN_MATCH

    parser = subcommands.add_parser(
        "fuse",
        help="funde o adaptador de um run no modelo base e verifica o resultado",
        description="Desquantiza cada camada adaptada, soma-lhe o LoRA em float32 e grava um modelo completo em "
        "runs/<nome>/fused/ (em float, sem re-quantizar, salvo --bits). Depois compara as respostas greedy do modelo "
        "fundido com as da base com o adaptador, nas perguntas de teste, e escreve runs/<nome>/fuse_check/. Se a fusão "
        "mudar as respostas para lá da tolerância, falha e não grava o modelo.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--output", type=Path, metavar="PASTA", help="pasta do modelo fundido (por omissão: runs/<nome>/fused)")
    parser.add_argument("--bits", type=integer_argument, metavar="N", help="re-quantiza o modelo fundido (p. ex. 4); a verificação mostra o que se perde")
    parser.add_argument("--limit", type=integer_argument, metavar="N", help="verifica só as primeiras N perguntas de teste")
    parser.add_argument("--max-tokens", type=integer_argument, default=96, metavar="N", help="máximo de tokens por resposta (por omissão: 96)")
    parser.add_argument("--min-match", type=number_argument, default=DEFAULT_MIN_MATCH, metavar="FRAÇÃO",
                        help=f"fração mínima de respostas iguais (por omissão: {DEFAULT_MIN_MATCH})")
    parser.add_argument("--max-f1-drop", type=number_argument, default=DEFAULT_MAX_F1_DROP, metavar="VALOR",
                        help=f"descida máxima do F1 médio (por omissão: {DEFAULT_MAX_F1_DROP})")
    parser.add_argument("--allow-running", action="store_true", help="funde mesmo que o treino do run ainda esteja a decorrer")
    parser.set_defaults(handler=commands.run_fuse_command, uses_mlx=True)



def add_export(subcommands) -> None:
    parser = subcommands.add_parser(
        "export",
        help="exporta o modelo fundido de um run para GGUF (llama.cpp, Ollama), com um Modelfile",
        description="Funde primeiro, se ainda não houver um modelo fundido verificado deste adaptador; depois escreve "
        "runs/<nome>/export/<nome>-f16.gguf (float16, tokenizador e molde de chat incluídos), um Modelfile do Ollama com "
        "o molde e a mensagem de sistema dos dados, e export.json.",
    )
    parser.add_argument("run", type=Path, help="pasta do run, p. ex. runs/<nome>")
    parser.add_argument("--gguf", action="store_true", help="formato GGUF (o único por agora)")
    parser.add_argument("--output", type=Path, metavar="PASTA", help="pasta de saída (por omissão: runs/<nome>/export)")
    parser.add_argument("--allow-running", action="store_true", help="exporta mesmo que o treino do run ainda esteja a decorrer")
    parser.set_defaults(handler=commands.run_export_command, uses_mlx=True)



def profile_keys_help() -> str:
    width = max(len(key) for key, _ in describe_keys())
    return "chaves do perfil (--set CHAVE=VALOR):\n" + "\n".join(f"  {key:<{width}}  {text}" for key, text in describe_keys())


def add_train(subcommands) -> None:
    parser = subcommands.add_parser(
        "train",
        help="treina um adaptador LoRA/QLoRA (run em runs/<nome>)",
        description="Treina um adaptador LoRA (QLoRA em Metal/CUDA) com o mlx-lm, num run em runs/<nome>/: run.json, "
        "metrics.jsonl, adapters/ (o melhor pela perda de validação, last/ e epoch-N/) e checkpoints/. "
        "Ctrl-C grava um checkpoint e mostra o comando para retomar.",
        epilog=profile_keys_help(),
    )
    parser.add_argument("--profile", default=default_profile_name(), help=f"perfil ({', '.join(available_profiles())} ou um .yaml); por omissão: smollm2, ou o da variável FARENSE_PROFILE")
    parser.add_argument("--run-name", help="nome do run (por omissão: <perfil>-<data>-<hora>)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="pasta dos runs (por omissão: runs)")
    parser.add_argument("--resume", type=Path, metavar="RUN", help="retoma exatamente o run indicado a partir do último checkpoint")
    quant = parser.add_mutually_exclusive_group()
    quant.add_argument("--quantized", dest="quantized", action="store_const", const=True,
                       help="QLoRA: mantém a base a 4 bits também no CPU (lento no CPU)")
    quant.add_argument("--no-quantized", dest="quantized", action="store_const", const=False,
                       help="LoRA sobre a base desquantizada em float32, também na GPU")
    parser.add_argument("--set", action="append", default=[], metavar="CHAVE=VALOR",
                       help="altera uma chave do perfil, p. ex. --set lora.dropout=0.1 (pode repetir)")
    for name, (key, kind) in SHORTCUTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=ARGUMENT_TYPES[kind], help=f"atalho para --set {key}=…")
    parser.add_argument("--grad-checkpoint", action="store_true", help="gradient checkpointing (menos memória, ~30%% mais lento)")
    parser.add_argument("--processes", type=integer_argument, help="treino distribuído local com N processos (mlx.launch, backend ring)")
    parser.add_argument("--hosts", help="treino distribuído em várias máquinas: IPs separados por vírgulas (mlx.launch, backend ring)")
    parser.set_defaults(handler=commands.run_train_command, uses_mlx=True)



def add_monitor(subcommands) -> None:
    parser = subcommands.add_parser(
        "monitor",
        help="acompanha um run (a decorrer ou terminado)",
        description="Mostra a evolução de um run: perdas (sparkline), tokens/s, memória, época e tempo restante. "
        "Atualiza-se até o run terminar; --once mostra um instantâneo e sai.",
    )
    parser.add_argument("run", type=Path, nargs="?", help="pasta do run (por omissão: o run mais recente em runs/)")
    parser.add_argument("--once", action="store_true", help="mostra um instantâneo e sai (para scripts)")
    parser.add_argument("--interval", type=number_argument, default=2.0, help="segundos entre atualizações (por omissão: 2)")
    parser.set_defaults(handler=commands.run_monitor_command, uses_mlx=False)



def add_data(subcommands) -> None:
    data = subcommands.add_parser(
        "data",
        help="valida, limpa, divide e descreve os dados JSONL",
        description="O passo dos dados. Formatos aceites por linha: {\"messages\": [...]} (chat), "
        "{\"prompt\", \"completion\"}, {\"text\"} e {\"question\", \"answer\"} (convertido para chat).",
    )
    actions = data.add_subparsers(dest="data_command", title="ações", metavar="AÇÃO", parser_class=Parser, required=True,
                                  help="o que fazer aos dados")

    validate = actions.add_parser("validate", help="lista todos os problemas, com ficheiro e linha",
                                  description="Valida uma pasta (train/valid/test.jsonl) ou um ficheiro JSONL e lista todos os "
                                  "problemas com ficheiro e linha. Sai com 1 se houver problemas.")
    validate.add_argument("target", nargs="?", type=Path, default=DEFAULT_DATA, help="pasta ou ficheiro .jsonl (por omissão: data)")
    add_token_options(validate)
    validate.add_argument("--json", action="store_true", help="escreve o resultado em JSON")
    validate.set_defaults(handler=commands.run_validate_command, uses_mlx=False)

    clean = actions.add_parser("clean", help="escreve cópias limpas noutra pasta, com relatório",
                               description="Escreve cópias limpas dos ficheiros numa pasta nova e um relatório "
                               "(clean_report.json e .md) do que foi removido ou alterado e porquê. A entrada nunca é alterada; "
                               "uma pasta de saída com ficheiros só é substituída com --force.")
    clean.add_argument("target", type=Path, help="pasta ou ficheiro .jsonl de entrada")
    clean.add_argument("--output", type=Path, required=True, help="pasta de saída (não pode ser a de entrada)")
    clean.add_argument("--force", action="store_true", help="substitui por inteiro uma pasta de saída que já tenha ficheiros")
    clean.add_argument("--system-prompt", help="mensagem de sistema a pôr nos pares question/answer convertidos para chat")
    clean.set_defaults(handler=commands.run_clean_command, uses_mlx=False)
    add_token_options(clean)

    split = actions.add_parser("split", help="divide em train/valid/test de forma determinística",
                               description="Divide os exemplos em train.jsonl, valid.jsonl e test.jsonl; a mesma semente dá "
                               "sempre os mesmos ficheiros, e perguntas iguais (normalizadas) ficam no mesmo conjunto.")
    split.add_argument("target", type=Path, help="ficheiro .jsonl (ou pasta) com todos os exemplos")
    split.add_argument("--output", type=Path, required=True, help="pasta de saída (vazia ou nova)")
    split.add_argument("--force", action="store_true", help="substitui por inteiro uma pasta de saída que já tenha ficheiros")
    split.add_argument("--seed", type=integer_argument, default=0, help="semente (por omissão: 0)")
    split.add_argument("--valid", type=number_argument, default=0.1, help="fração para validação (por omissão: 0.1)")
    split.add_argument("--test", type=number_argument, default=0.1, help="fração para teste (por omissão: 0.1)")
    split.set_defaults(handler=commands.run_split_command, uses_mlx=False)

    stats = actions.add_parser("stats", help="contagens e tokens por exemplo: JSON, Markdown e histograma",
                               description="Escreve stats.json, stats.md e token_lengths.png com contagens e percentis de "
                               "tokens por exemplo (tokenizador do modelo do perfil).")
    stats.add_argument("target", nargs="?", type=Path, default=DEFAULT_DATA, help="pasta de dados (por omissão: data)")
    stats.add_argument("--output", type=Path, default=Path("runs/data-stats"), help="pasta de saída (por omissão: runs/data-stats)")
    stats.add_argument("--card", type=Path, help="cartão de dados cuja secção gerada é atualizada (p. ex. data/README.md)")
    stats.set_defaults(handler=commands.run_stats_command, uses_mlx=False)
    add_token_options(stats, allow_skip=False)


def add_token_options(parser, allow_skip: bool = True) -> None:
    parser.add_argument("--profile", default=default_profile_name(),
                        help="perfil de onde vêm o modelo e max_seq_length (por omissão: smollm2, ou o da variável FARENSE_PROFILE)")
    parser.add_argument("--model", help="modelo cujo tokenizador conta os tokens (por omissão: o do perfil)")
    parser.add_argument("--max-seq-length", type=integer_argument, help="limite de tokens por exemplo (por omissão: o do perfil)")
    if allow_skip:
        parser.add_argument("--no-tokens", action="store_true", help="não conta tokens (mais rápido, sem carregar o tokenizador)")


def build_parser() -> Parser:
    translate_argparse()
    parser = Parser(
        prog="farense-guide",
        description="Fine-tuning de um modelo de linguagem num Apple M1 de 16 GB com MLX: "
        "o exemplo do Sporting Clube Farense, do início ao fim.",
    )
    parser.add_argument("--version", action="version", version=f"farense-guide {__version__}", help="mostra a versão e sai")
    subcommands = parser.add_subparsers(title="comandos", metavar="COMANDO", parser_class=Parser, help="o passo a correr")
    for add in (add_preflight, add_model, add_chat, add_data, add_train, add_monitor, add_evaluate, add_compare, add_study, add_report,
                add_fragments, add_pdf, add_fuse, add_export):
        add(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0
    if args.uses_mlx:
        status = blas.rerun_with_fast_blas(argv)
        if status is not None:
            return status
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" banner
    args.argv = argv  # the train command records it and re-runs it under mlx.launch
    try:
        return args.handler(args)
    except FarenseError as exc:
        print(f"erro: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrompido.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of a pipe left early (`| head`): what it wanted was printed. Point stdout at
        # /dev/null so that the interpreter's final flush does not raise again, as Python's docs advise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
