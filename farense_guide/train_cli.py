"""`farense-guide train` and `farense-guide monitor`: arguments and what the terminal shows."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.config import default_profile_name

# Named shortcuts for the profile keys people change most; anything else: --set key=value.
SHORTCUTS = {
    "epochs": ("epochs", int),
    "batch_size": ("batch_size", int),
    "grad_accumulation": ("grad_accumulation", int),
    "learning_rate": ("learning_rate", float),
    "max_seq_length": ("max_seq_length", int),
    "max_steps": ("max_steps", int),
    "lora_rank": ("lora.rank", int),
    "lora_layers": ("lora.num_layers", int),
    "seed": ("seed", int),
    "data": ("data", str),
}
DISTRIBUTED_FLAGS = ("--processes", "--hosts")


def add_train_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="treina um adaptador LoRA/QLoRA (run em runs/<nome>)",
        description="Treina um adaptador LoRA (QLoRA em Metal/CUDA) com o mlx-lm, num run em runs/<nome>/: run.json, "
        "metrics.jsonl, adapters/ (o melhor pela perda de validação, last/ e epoch-N/) e checkpoints/. "
        "Ctrl-C grava um checkpoint e mostra o comando para retomar.",
    )
    train.add_argument("--profile", default=default_profile_name(), help="perfil (smollm2, tiny, m1-16gb ou um .yaml); por omissão: smollm2, ou o da variável FARENSE_PROFILE")
    train.add_argument("--run-name", help="nome do run (por omissão: <perfil>-<data>-<hora>)")
    train.add_argument("--runs-dir", type=Path, default=Path("runs"), help="pasta dos runs (por omissão: runs)")
    train.add_argument("--resume", type=Path, metavar="RUN", help="retoma exatamente o run indicado a partir do último checkpoint")
    quant = train.add_mutually_exclusive_group()
    quant.add_argument("--quantized", dest="quantized", action="store_const", const=True,
                       help="QLoRA: mantém a base a 4 bits também no CPU (lento no CPU)")
    quant.add_argument("--no-quantized", dest="quantized", action="store_const", const=False,
                       help="LoRA sobre a base desquantizada em float32, também na GPU")
    train.add_argument("--set", action="append", default=[], metavar="CHAVE=VALOR",
                       help="altera uma chave do perfil, p. ex. --set lora.dropout=0.1 (pode repetir)")
    for name, (key, kind) in SHORTCUTS.items():
        train.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"atalho para --set {key}=…")
    train.add_argument("--grad-checkpoint", action="store_true", help="gradient checkpointing (menos memória, ~30%% mais lento)")
    train.add_argument("--processes", type=int, help="treino distribuído local com N processos (mlx.launch, backend ring)")
    train.add_argument("--hosts", help="treino distribuído em várias máquinas: IPs separados por vírgulas (mlx.launch, backend ring)")

    monitor = commands.add_parser(
        "monitor",
        help="acompanha um run (a decorrer ou terminado)",
        description="Mostra a evolução de um run: perdas (sparkline), tokens/s, memória, época e tempo restante. "
        "Atualiza-se até o run terminar; --once mostra um instantâneo e sai.",
    )
    monitor.add_argument("run", type=Path, nargs="?", help="pasta do run (por omissão: o run mais recente em runs/)")
    monitor.add_argument("--once", action="store_true", help="mostra um instantâneo e sai (para scripts)")
    monitor.add_argument("--interval", type=float, default=2.0, help="segundos entre atualizações (por omissão: 2)")


def overrides_from(args) -> list[str]:
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


def run_train_command(args, argv: list[str]) -> int:
    from farense_guide.config import apply_overrides, load_profile, profile_from_dict
    from farense_guide.runs import RunFolder
    from farense_guide.steps.train import TrainPlan, train

    if args.processes or args.hosts:
        return launch_distributed(args, argv)
    if args.resume:
        run = RunFolder(args.resume)
        profile = profile_from_dict(run.read_run()["profile"])
        if overrides_from(args):
            raise FarenseError("ao retomar, o perfil é o do run: não use --set nem atalhos.")
    else:
        profile = apply_overrides(load_profile(args.profile), overrides_from(args))
        run = RunFolder(args.runs_dir / (args.run_name or default_run_name(args.profile)))
        if run.run_json.exists():
            raise FarenseError(f"{run.path} já existe.", f"para continuar esse run: farense-guide train --resume {run.path}")
    info = train(TrainPlan(profile, run, quantized=args.quantized, resume=bool(args.resume)))
    return report_end(info, run) if info.get("rank", 0) == 0 else 0


def report_end(info: dict, run) -> int:
    status, step = info["status"], info["steps_done"]
    best = info["best"]
    if status == "interrupted":
        print(f"Treino interrompido no passo {step}; checkpoint gravado.\nPara retomar: farense-guide train --resume {run.path}",
              file=sys.stderr)
        return 130
    if status == "failed_nan":
        kept = run.checkpoint_steps()
        where = f"o último checkpoint bom é o do passo {kept[-1]}" if kept else "não havia checkpoint anterior"
        print(f"erro: a perda deixou de ser finita (NaN/inf) depois do passo {step}; treino parado e {where}.\n"
              "  sugestão: recomece com uma taxa de aprendizagem mais baixa (--learning-rate) num run novo (--run-name).", file=sys.stderr)
        return 1
    label = "terminado" if status == "completed" else "parado cedo (a perda de validação deixou de melhorar)"
    print(f"Treino {label}: {step} passos; melhor perda de validação {best['val_loss']:.4f} no passo {best['step']}.\n"
          f"Adaptadores em {run.adapters} (o melhor) e {run.adapters / 'last'}"
          + (f", e um por época em {run.adapters}/epoch-N." if list(run.adapters.glob("epoch-*")) else "."))
    return 0
