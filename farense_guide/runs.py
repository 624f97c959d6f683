"""Run folders: the unit of reproducibility.

runs/<name>/
  run.json          settings, data hashes, versions, machine, backend, times, status
  metrics.jsonl     one JSON object per training report and per validation
  adapters/         the best adapter by validation loss, in mlx-lm's format
  adapters/last/    the adapter at the end of training
  adapters/epoch-N/ the adapter at the end of each epoch
  checkpoints/step-NNNNNNN/  what exact resume needs; the last few are kept

Everything is written to a temporary name and renamed, so a kill at any moment
leaves the previous version whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from farense_guide.errors import FarenseError

CHECKPOINT_PREFIX = "step-"


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON write: temporary file in the same folder, then rename."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    replace_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FarenseError(f"{path}: não existe.") from None
    except ValueError as exc:
        raise FarenseError(f"{path}: JSON inválido ({exc}).") from None


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

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
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def read_run(self) -> dict:
        return read_json(self.run_json)

    def write_run(self, data: dict) -> None:
        write_json(self.run_json, data)

    def append_metrics(self, entry: dict) -> None:
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
        kept = [e for e in self.read_metrics() if e.get("step", 0) <= after_step]
        tmp = self.metrics.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept), encoding="utf-8")
        os.replace(tmp, self.metrics)

    def save_checkpoint_folder(self, step: int, write) -> Path:
        """`write(tmp)` fills a temporary folder that is then renamed to the step's checkpoint."""
        target = self.checkpoint(step)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.checkpoints))
        try:
            write(tmp)
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

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"{CHECKPOINT_PREFIX}{step:07d}"

    def prune_checkpoints(self, keep: int) -> None:
        for step in self.checkpoint_steps()[:-keep]:
            shutil.rmtree(self.checkpoint(step), ignore_errors=True)
        for stale in self.checkpoints.glob(".*"):  # temporaries of a killed save
            shutil.rmtree(stale, ignore_errors=True)


def replace_file(path: Path, write) -> None:
    """Atomic file write: `write(tmp_path)` then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the final file should read like any other
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
