"""Run folders, the unit of reproducibility, and the two helpers every writer uses.

runs/<name>/
  run.json                    RunInfo: settings, data hashes, versions, machine, backend, times, status
  metrics.jsonl               one JSON object per training report and per validation
  adapters/                   the best adapter by validation loss, in mlx-lm's format
  adapters/last/, epoch-N/    the adapter at the end of training, and of each epoch
  checkpoints/step-NNNNNNN/   what exact resume needs, with manifest.json (each file's size and sha256); the last few are kept
  .lock                       while a process trains the run: locked by it (flock), with its pid and host
  evaluation/                 evaluation_report.json, predictions.jsonl, the CSV, variants/ and EVALUATION_REPORT.md
  figures/, tables/           what `report` draws from the JSON
  fuse_check[-Nbit]/, fused/  the fuse check and the fused model
  export/                     the GGUF and the Ollama Modelfile

`RunFolder` is the only place that spells these paths. `safe_write` writes every file the package
writes: to a temporary name in the same folder, then renamed, so a kill at any moment leaves the
previous version whole (the one exception is .lock, whose lock lives on its inode: a rename would
drop it). `Stamp` skips work whose inputs have not changed.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import hashlib
import io
import json
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from farense_guide.errors import FarenseError

if TYPE_CHECKING:
    from farense_guide.config import Profile

CHECKPOINT_PREFIX = "step-"
CHECKPOINT_MANIFEST = "manifest.json"


# ── safe writes ─────────────────────────────────────────────────────────────────────────────────


def safe_write(path: Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write `content` (text, bytes, or a function that writes a given path) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the final file should read like any other
    try:
        if isinstance(content, str):
            content = content.encode("utf-8")  # "\n" stays "\n" on every system
        if isinstance(content, bytes):
            Path(tmp).write_bytes(content)
        else:
            content(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: Path, data) -> Path:
    return safe_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    return safe_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_csv(path: Path, rows: Iterable[list]) -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return safe_write(path, buffer.getvalue())


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FarenseError(f"{path}: não existe.") from None
    except ValueError as exc:
        raise FarenseError(f"{path}: JSON inválido ({exc}).") from None


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Stamp:
    """"Skip if the inputs are unchanged": the sha256 of the inputs, kept in a small file next to the outputs.

    Inputs are paths (their file name and bytes; a missing file counts as missing) or texts. The list is
    fixed and ordered, so the file name is enough: the same files in another clone give the same key.
    """

    def __init__(self, path: Path, inputs: Iterable[Path | str]):
        self.path = Path(path)
        digest = hashlib.sha256()
        for item in inputs:
            if isinstance(item, Path):
                digest.update(item.name.encode() + (item.read_bytes() if item.is_file() else b"-"))
            else:
                digest.update(item.encode())
        self.key = digest.hexdigest()

    def is_current(self) -> bool:
        return self.path.is_file() and self.path.read_text() == self.key

    def record(self) -> None:
        safe_write(self.path, self.key)


# ── run.json ────────────────────────────────────────────────────────────────────────────────────


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED_NAN = "failed_nan"
    EARLY_STOPPED = "early_stopped"


@dataclass
class Iterations:
    epochs: int
    train_examples: int
    valid_examples: int
    batch_size: int
    grad_accumulation: int
    effective_batch: int
    steps_per_epoch: int
    full_steps: int
    total_steps: int
    optimizer_steps: int
    shortened: bool


@dataclass
class Backend:
    device: str  # "cpu" | "gpu"
    method: str  # shown as is: "LoRA (base em float32)", "QLoRA (base a 4 bits)"
    base_bits: int | None  # the base's bits during training; None: a float base
    model_path: str


@dataclass
class Best:
    step: int = 0
    val_loss: float = math.inf


@dataclass
class Throughput:
    trained_tokens: int
    train_seconds: float
    tokens_per_second: float | None


@dataclass
class RunInfo:
    """run.json, typed. Keys this class does not know are kept as they are in `extra`."""

    name: str
    profile: Profile
    iterations: Iterations
    data: dict  # split -> {"path", "sha256"}
    backend: Backend
    status: RunStatus = RunStatus.RUNNING
    processes: int = 1
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)  # machine.describe_machine()
    memory: dict = field(default_factory=dict)  # {"estimate": ..., "peak_gb": ...}
    command: list[str] = field(default_factory=list)
    started_at: str = ""
    process: dict | None = None  # {"pid", "host"} of the training process, for the monitor
    resumed_at: list[dict] = field(default_factory=list)
    ended_at: str | None = None
    steps_done: int | None = None
    best: Best | None = None
    throughput: Throughput | None = None
    adapters: dict | None = None  # {"best", "last", "epochs"}
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "RunInfo":
        from farense_guide.config import profile_from_dict  # here: noxfile.py reads this module without PyYAML

        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        values["profile"] = profile_from_dict(data["profile"])
        values["iterations"] = Iterations(**data["iterations"])
        values["backend"] = Backend(**data["backend"])
        values["status"] = RunStatus(data.get("status", RunStatus.RUNNING))
        for key, kind in (("best", Best), ("throughput", Throughput)):
            if data.get(key) is not None:
                values[key] = kind(**data[key])
        return cls(**values, extra={key: value for key, value in data.items() if key not in known})

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        data = {key: value for key, value in data.items() if value is not None and value != []}
        data = json.loads(json.dumps({**data, **self.extra}, default=_plain))
        return data

    @property
    def shortened(self) -> bool:
        return self.iterations.shortened


def _plain(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} não é serializável em JSON")


# ── the training lock ───────────────────────────────────────────────────────────────────────────

LOCK_TRIES = 5  # a checker (training_holder) holds the lock for an instant: a claim tries again before refusing


@dataclass(frozen=True)
class Holder:
    """The process that holds a run's training lock."""

    pid: int | str
    host: str

    def __str__(self) -> str:
        return f"processo {self.pid} em {self.host}"


def read_holder(path: Path) -> Holder:
    """The holder named in a lock file; a new holder writes its name just after taking the lock, so wait a moment for it."""
    for _ in range(20):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Holder(data["pid"], data["host"])
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return Holder("desconhecido", "máquina desconhecida")


class TrainingLock:
    """An exclusive flock on a run's .lock file, with the holder's pid and host inside.

    The kernel drops a flock when its process ends, however it ends: a killed run leaves its file, but no lock.
    The file is written in place, not with safe_write: the lock belongs to the file's inode, which a rename would replace.
    """

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> Holder | None:
        """Take the lock and write this process into it; None, or the holder when another process has it."""
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not self._lock(fd):
                os.close(fd)
                return read_holder(self.path)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we took it (release): lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": platform.node()}).encode(), 0)
        self.fd = fd
        return None

    @staticmethod
    def _lock(fd: int) -> bool:
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if attempt < LOCK_TRIES - 1:
                    time.sleep(0.1)
        return False

    def release(self) -> None:
        """Remove the file, then drop the lock; a claimant that opened the removed file sees it and opens the new one."""
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # closing the file drops the lock
            self.fd = None


def checkpoint_manifest(folder: Path) -> dict:
    """Each file of a checkpoint folder: its size and sha256."""
    return {"files": {path.name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
                      for path in sorted(folder.iterdir()) if path.is_file() and path.name != CHECKPOINT_MANIFEST}}


# ── the folder ──────────────────────────────────────────────────────────────────────────────────


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # training
    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def adapters(self) -> Path:
        return self.path / "adapters"

    @property
    def best_adapter(self) -> Path:
        return self.adapters

    @property
    def last_adapter(self) -> Path:
        return self.adapters / "last"

    def epoch_adapter(self, epoch: int) -> Path:
        return self.adapters / f"epoch-{epoch}"

    def epoch_adapters(self) -> list[Path]:
        """adapters/epoch-N folders, by epoch number."""
        return sorted(self.adapters.glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"{CHECKPOINT_PREFIX}{step:07d}"

    # evaluation and report
    @property
    def evaluation(self) -> Path:
        return self.path / "evaluation"

    @property
    def evaluation_report(self) -> Path:
        return self.evaluation / "evaluation_report.json"

    @property
    def predictions(self) -> Path:
        return self.evaluation / "predictions.jsonl"

    @property
    def evaluation_summary(self) -> Path:
        return self.evaluation / "evaluation_summary.csv"

    @property
    def evaluation_markdown(self) -> Path:
        return self.evaluation / "EVALUATION_REPORT.md"

    def evaluated_variant(self, name: str) -> Path:
        """Each evaluated variant is kept as soon as it is done: a crash loses one, not all."""
        return self.evaluation / "variants" / f"{name}.json"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def tables(self) -> Path:
        return self.path / "tables"

    @property
    def report_stamp(self) -> Path:
        return self.path / ".report-stamp"

    # fuse and export
    def fuse_check(self, bits: int | None = None) -> Path:
        """fuse_check/ for the float fuse, fuse_check-4bit/ for a re-quantized one: one does not overwrite the other."""
        return self.path / (f"fuse_check-{bits}bit" if bits else "fuse_check")

    def fuse_checks(self) -> list[Path]:
        return sorted(self.path.glob("fuse_check*/fuse_check.json"))

    @property
    def fused(self) -> Path:
        return self.path / "fused"

    @property
    def export(self) -> Path:
        return self.path / "export"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    # the training lock
    @contextlib.contextmanager
    def claimed(self, new: bool):
        """Hold the run's training lock for the block. Refused (FarenseError) while another process holds it, and
        for a new run (`new`) when run.json exists; a new run that stops before writing run.json leaves no folder."""
        created = not self.path.exists()
        lock = TrainingLock(self.lock_file)
        if holder := lock.acquire():
            raise self.busy_error(holder)
        try:
            if new and self.exists():
                raise self.exists_error()
            yield lock
        finally:
            lock.release()
            if created and not self.exists():  # a new run that stopped before its run.json: no empty folder left
                with contextlib.suppress(OSError):
                    self.path.rmdir()

    def training_holder(self) -> Holder | None:
        """The process training this run now, or None; found by trying a shared lock, dropped at once."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(self.lock_file)
        finally:
            os.close(fd)
        return None

    def busy_error(self, holder: Holder) -> FarenseError:
        return FarenseError(f"{self.path}: este run já está a ser treinado pelo {holder}.",
                            f"espere que esse treino termine (farense-guide monitor {self.path}) ou dê outro nome ao run (--run-name)")

    def exists_error(self) -> FarenseError:
        return FarenseError(f"{self.path} já existe.", f"para continuar esse run: farense-guide train --resume {self.path}")

    def taken_error(self) -> FarenseError:
        """Why a new run cannot have this name: its folder is being trained now, or holds a run."""
        holder = self.training_holder()
        return self.busy_error(holder) if holder else self.exists_error()

    # run.json
    def exists(self) -> bool:
        return self.run_json.is_file()

    def read_info(self) -> RunInfo:
        data = read_json(self.run_json)
        try:
            return RunInfo.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise FarenseError(f"{self.run_json}: não é um run.json válido ({exc}).") from None

    def write_info(self, info: RunInfo) -> None:
        write_json(self.run_json, info.to_dict())

    # metrics.jsonl
    def append_metrics(self, entry: dict) -> None:
        """Append-only, one line per entry: a crash can only cut the last line, which read_metrics skips."""
        with open(self.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()

    def read_metrics(self) -> list[dict]:
        """Metric entries; a half-written last line (a crash while appending) is skipped."""
        if not self.metrics.exists():
            return []
        entries = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def truncate_metrics(self, after_step: int) -> None:
        """Drop entries past a checkpoint's step: a resumed run writes them again."""
        write_jsonl(self.metrics, [e for e in self.read_metrics() if e.get("step", 0) <= after_step])

    # checkpoints
    def save_checkpoint_folder(self, step: int, write: Callable[[Path], None]) -> Path:
        """`write(tmp)` fills a temporary folder; its manifest.json is written last; then it is renamed to the step's checkpoint."""
        target = self.checkpoint(step)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.checkpoints))
        try:
            write(tmp)
            write_json(tmp / CHECKPOINT_MANIFEST, checkpoint_manifest(tmp))
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def checkpoint_steps(self) -> list[int]:
        if not self.checkpoints.exists():
            return []
        steps = []
        for folder in self.checkpoints.iterdir():
            if folder.name.startswith(CHECKPOINT_PREFIX) and (folder / "state.json").exists():
                steps.append(int(folder.name[len(CHECKPOINT_PREFIX):]))
        return sorted(steps)

    def checkpoint_problem(self, step: int) -> str | None:
        """What its manifest finds wrong with the step's checkpoint (pt-PT); None when every file matches.

        A checkpoint without a manifest (saved before checkpoints had one) cannot be verified: None too,
        and the resume finds out by loading it.
        """
        manifest_path = self.checkpoint(step) / CHECKPOINT_MANIFEST
        if not manifest_path.exists():
            return None
        try:
            files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return f"{CHECKPOINT_MANIFEST} ilegível"
        for name, expected in files.items():
            path = self.checkpoint(step) / name
            if not path.is_file():
                return f"falta {name}"
            if path.stat().st_size != expected["bytes"]:
                return f"{name} tem {path.stat().st_size} bytes e o manifesto diz {expected['bytes']}"
            if file_sha256(path) != expected["sha256"]:
                return f"o sha256 de {name} não é o do manifesto"
        return None

    def prune_checkpoints(self, keep: int) -> None:
        for step in self.checkpoint_steps()[:-keep]:
            shutil.rmtree(self.checkpoint(step), ignore_errors=True)
        for stale in self.checkpoints.glob(".*"):  # temporaries of a killed save
            shutil.rmtree(stale, ignore_errors=True)
