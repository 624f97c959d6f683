"""Talk to a base model, with or without a trained adapter, with the data set's system prompt."""

from __future__ import annotations

import sys
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.models import resolve_model

EXIT_WORDS = {"sair", "exit", "quit", ":q"}


def adapter_folder(path: Path) -> Path:
    """An adapter folder from itself or from a run folder (runs/<name> -> runs/<name>/adapters)."""
    for candidate in (path, path / "adapters"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise FarenseError(f"{path}: não tem adapter_config.json (nem {path / 'adapters'}): não é um adaptador nem um run.")


def base_model_of(adapter: Path | None, default: str) -> str:
    """The base model an adapter was trained on (its adapter_config.json says), else `default`."""
    import json

    if adapter is None:
        return default
    return json.loads((adapter / "adapter_config.json").read_text()).get("model") or default


def load_chat_model(model: str, adapter: Path | None = None):
    from mlx_lm import load

    return load(str(resolve_model(model)), adapter_path=str(adapter) if adapter else None)


def answer(model, tokenizer, messages: list[dict], max_tokens: int = 200, stream=None) -> str:
    """Greedy answer to a conversation; `stream` gets each piece of text as it is generated."""
    from mlx_lm import stream_generate

    from farense_guide.chat_template import render

    prompt = render(tokenizer, messages, add_generation_prompt=True)
    pieces = []
    for response in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        pieces.append(response.text)
        if stream:
            stream(response.text)
    return "".join(pieces)


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chat(model: str, adapter: Path | None, question: str | None, system: str | None, max_tokens: int, compare_base: bool) -> None:
    """One answer to `question`, or a conversation on the terminal until 'sair' or Ctrl-D.

    With `compare_base`, each question is also answered by the base model without the adapter.
    """
    adapter = adapter_folder(adapter) if adapter else None
    model = base_model_of(adapter, model)
    speakers = [("afinado" if adapter else "modelo", load_chat_model(model, adapter))]
    if compare_base:
        if adapter is None:
            raise FarenseError("--base compara com um adaptador: indique também --adapter runs/<nome>.")
        speakers.insert(0, ("base", load_chat_model(model)))
    histories = {name: [{"role": "system", "content": system}] if system else [] for name, _ in speakers}

    def ask(text: str) -> None:
        for name, (model_obj, tokenizer) in speakers:
            histories[name].append({"role": "user", "content": text})
            write(f"{name}> " if len(speakers) > 1 or question is None else "")
            reply = answer(model_obj, tokenizer, histories[name], max_tokens, write)
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
