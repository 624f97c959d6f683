"""Talk to a base model, with or without a trained adapter."""

from __future__ import annotations

import sys
from pathlib import Path

from farense_guide.errors import FarenseError
from farense_guide.models import resolve_model

EXIT_WORDS = {"sair", "exit", "quit", ":q"}


def load_chat_model(model: str, adapter: Path | None = None):
    from mlx_lm import load

    folder = resolve_model(model)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise FarenseError(f"{adapter}: não tem adapter_config.json (não é uma pasta de adaptadores mlx-lm).")
    return load(str(folder), adapter_path=str(adapter) if adapter else None)


def answer(model, tokenizer, messages: list[dict], max_tokens: int = 200, stream=None) -> str:
    """Greedy answer to a conversation; `stream` gets each piece of text as it is generated."""
    from mlx_lm import stream_generate

    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pieces = []
    for response in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        pieces.append(response.text)
        if stream:
            stream(response.text)
    return "".join(pieces)


def chat(model: str, adapter: Path | None, prompt: str | None, system: str | None, max_tokens: int) -> None:
    """One answer to `prompt`, or a conversation on the terminal until 'sair' or Ctrl-D."""
    model_obj, tokenizer = load_chat_model(model, adapter)
    history = [{"role": "system", "content": system}] if system else []

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if prompt is not None:
        answer(model_obj, tokenizer, history + [{"role": "user", "content": prompt}], max_tokens, write)
        write("\n")
        return
    print("Conversa com o modelo. Escreva 'sair' (ou Ctrl-D) para terminar.")
    while True:
        try:
            question = input("\nvocê> ").strip()
        except EOFError:
            print()
            return
        if question.lower() in EXIT_WORDS:
            return
        if not question:
            continue
        history.append({"role": "user", "content": question})
        write("modelo> ")
        reply = answer(model_obj, tokenizer, history, max_tokens, write)
        write("\n")
        history.append({"role": "assistant", "content": reply})
