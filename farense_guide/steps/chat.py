"""Talk to a base model, with or without a trained adapter, with the data set's system prompt.

An adapter of a run (the run folder, or an adapter folder inside it) is put on the base exactly as
the run trained it and `evaluate` scored it (inference.load_run_model): chat answers with the same
model, the same prompt (chat_template.render) and greedy decoding, as the evaluation did (see
inference.py for why one question alone and a padded batch agree).
An adapter without its run.json goes on the base its adapter_config.json names, at the precision
training takes on this device by default.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Callable

from farense_guide.errors import FarenseError
from farense_guide.inference import load_device_model, load_run_model, stream_answer
from farense_guide.runs import RunFolder, read_json

EXIT_WORDS = {"sair", "exit", "quit", ":q"}


def adapter_folder(path: Path) -> Path:
    """An adapter folder from itself or from a run folder (runs/<name> -> runs/<name>/adapters)."""
    for candidate in (path, path / "adapters"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise FarenseError(f"{path}: não tem adapter_config.json (nem {path / 'adapters'}): não é um adaptador nem um run.")


def run_of(adapter: Path) -> RunFolder | None:
    """The run an adapter folder belongs to (runs/<name>/adapters, adapters/last, adapters/epoch-N), if it has a run.json."""
    for folder in (adapter.parent, adapter.parent.parent):
        run = RunFolder(folder)
        if run.exists() and adapter.resolve().is_relative_to(run.adapters.resolve()):
            return run
    return None


def base_model_of(adapter: Path | None, default: str) -> str:
    """The base model an adapter was trained on (its adapter_config.json says), else `default`."""
    if adapter is None:
        return default
    return read_json(adapter / "adapter_config.json").get("model") or default


def loader(model: str, adapter: Path | None) -> Callable[[Path | None], tuple]:
    """How to load the base with an adapter or none: as the adapter's run trained it, else at this device's default precision."""
    run = run_of(adapter) if adapter else None
    if run is None:
        return partial(load_device_model, base_model_of(adapter, model))
    info = run.read_info()
    return partial(load_run_model, info.profile, info.backend)


def chat_models(model: str, adapter: Path | None, compare_base: bool) -> list[tuple[str, tuple]]:
    """(name, (model, tokenizer)) of who answers: the base first with `compare_base`, then the adapted model."""
    if compare_base and adapter is None:
        raise FarenseError("--base compara com um adaptador: indique também --adapter runs/<nome>.")
    load = loader(model, adapter)
    speakers = [("afinado" if adapter else "modelo", load(adapter))]
    if compare_base:
        speakers.insert(0, ("base", load(None)))
    return speakers


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chat(model: str, adapter: Path | None, question: str | None, system: str | None, max_tokens: int, compare_base: bool) -> None:
    """One answer to `question`, or a conversation on the terminal until 'sair' or Ctrl-D.

    With `compare_base`, each question is also answered by the base model without the adapter.
    """
    speakers = chat_models(model, adapter_folder(adapter) if adapter else None, compare_base)
    histories = {name: [{"role": "system", "content": system}] if system else [] for name, _ in speakers}

    def ask(text: str) -> None:
        for name, (model_obj, tokenizer) in speakers:
            histories[name].append({"role": "user", "content": text})
            write(f"{name}> " if len(speakers) > 1 or question is None else "")
            reply = stream_answer(model_obj, tokenizer, histories[name], max_tokens, write)
            write("\n")
            histories[name].append({"role": "assistant", "content": reply})

    if question is not None:
        ask(question)
        return
    print("Conversa com o modelo. Escreva 'sair' (ou Ctrl-D) para terminar.")
    while True:
        try:
            text = input("\npergunta> ").strip()
        except EOFError:
            print()
            return
        if text.lower() in EXIT_WORDS:
            return
        if text:
            ask(text)
