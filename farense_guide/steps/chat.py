"""Talk to a base model, with or without a trained adapter, with the data set's system prompt.

An adapter of a run (the run folder, or an adapter folder inside it) is put on the base exactly as
the run trained it and `evaluate` scored it (inference.load_run_model): chat answers with the same
model, the same prompt (chat_template.render) and greedy decoding, as the evaluation did (see
inference.py for why one question alone and a padded batch agree).
An adapter without its run.json goes on the base its adapter_config.json names, at the precision
training takes on this device by default.

Before anything is generated, a question is cleaned (`clean_question`) and refused when it is empty or when
the conversation would not fit in the model's context (`check_fits`); an adapter that does not fit the base
is refused by name (`check_base_choice`, `put_adapter`).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from functools import partial
from pathlib import Path
from typing import Callable

from farense_guide.errors import FarenseError
from farense_guide.inference import load_device_model, load_run_model, prompt_tokens, stream_answer, with_adapter
from farense_guide.runs import RunFolder, read_json

DEFAULT_MODEL = "smollm2"
EXIT_WORDS = {"sair", "exit", "quit", ":q"}
KEPT_CONTROLS = "\n\t"
# The keys a model's config may give its context under (llama and most: max_position_embeddings; GPT-2: n_positions).
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


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


def adapter_config(adapter: Path) -> dict:
    """adapter_config.json, refused by name when it lacks what mlx-lm reads (it would stop with a KeyError)."""
    path = adapter / "adapter_config.json"
    config = read_json(path)
    if not (isinstance(config, dict) and isinstance(config.get("model", ""), str) and lora_settings_complete(config)):
        raise FarenseError(f"{path}: não é um adapter_config.json de LoRA (model, num_layers e lora_parameters com rank, scale "
                           "e dropout).")
    weights = adapter / "adapters.safetensors"
    if not weights.is_file():
        raise FarenseError(f"{adapter}: falta o ficheiro dos pesos do adaptador, adapters.safetensors.")
    if not safetensors_header_reads(weights):
        raise FarenseError(f"{weights}: não é um ficheiro safetensors válido (danificado ou truncado?).")
    return config


def lora_settings_complete(config: dict) -> bool:
    if config.get("fine_tune_type", "lora") == "full":
        return True
    lora = config.get("lora_parameters")
    return isinstance(config.get("num_layers"), int) and isinstance(lora, dict) and {"rank", "scale", "dropout"} <= set(lora)


def safetensors_header_reads(path: Path) -> bool:
    """Whether the file starts as safetensors do: 8 bytes of header length, then that many bytes of a JSON object."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if not 0 < length <= path.stat().st_size - 8:
            return False
        try:
            return isinstance(json.loads(handle.read(length)), dict)
        except ValueError:
            return False


def base_model_of(adapter: Path | None, default: str) -> str:
    """The base model an adapter was trained on (its adapter_config.json says), else `default`."""
    if adapter is None:
        return default
    return adapter_config(adapter).get("model") or default


def trained_base(adapter: Path, default: str) -> str:
    """The base the adapter goes on: its run's model, else the one its adapter_config.json names, else `default`."""
    run = run_of(adapter)
    return run.read_info().profile.model if run else base_model_of(adapter, default)


def same_model(first: str, second: str) -> bool:
    from farense_guide.models import EMBEDDED_NAMES

    if first == second or {first, second} <= set(EMBEDDED_NAMES):
        return True
    folders = [Path(spec).expanduser() for spec in (first, second)]
    return all(folder.is_dir() for folder in folders) and folders[0].resolve() == folders[1].resolve()


def check_base_choice(model: str, adapter: Path) -> None:
    """An explicit --model must be the base the adapter was trained on: an adapter fits only its own base."""
    folder = adapter_folder(adapter)
    trained_on = trained_base(folder, model)
    if not same_model(model, trained_on):
        raise FarenseError(f"o adaptador {folder} foi treinado sobre o modelo {trained_on}, não sobre {model}.",
                           hint="sem --model, o chat usa o modelo base do adaptador")


def loader(model: str, adapter: Path | None) -> Callable[[Path | None], tuple]:
    """How to load the base with an adapter or none: as the adapter's run trained it, else at this device's default precision."""
    run = run_of(adapter) if adapter else None
    if run is None:
        return partial(load_device_model, base_model_of(adapter, model))
    info = run.read_info()
    return partial(load_run_model, info.profile, info.backend)


def put_adapter(loaded: tuple, adapter: Path, base: str) -> tuple:
    """(model, tokenizer) with the adapter on the model, as load(adapter) would give; an adapter whose tensors have no
    place in this base (another model's: other layers or sizes) is refused by name instead of mlx-lm's ValueError."""
    model, tokenizer = loaded
    try:
        return with_adapter(model, adapter), tokenizer
    except RuntimeError as exc:  # MLX's own reader: tensors cut short or out of the file
        raise FarenseError(f"{adapter / 'adapters.safetensors'}: não se consegue ler ({exc}).") from None
    except ValueError:
        named = adapter_config(adapter).get("model")
        said = f"diz que foi treinado sobre {named}" if named else "não diz sobre que modelo foi treinado"
        raise FarenseError(f"o adaptador {adapter} não serve no modelo {base}: as suas camadas LoRA não correspondem às do "
                           f"modelo (o adapter_config.json {said}).",
                           hint="use o adaptador com o modelo base com que foi treinado") from None


def chat_models(model: str, adapter: Path | None, compare_base: bool) -> list[tuple[str, tuple]]:
    """(name, (model, tokenizer)) of who answers: the base first with `compare_base`, then the adapted model."""
    if compare_base and adapter is None:
        raise FarenseError("--base compara com um adaptador: indique também --adapter runs/<nome>.")
    if adapter is None:
        return [("modelo", loader(model, None)(None))]
    adapter_config(adapter)  # refused before the base loads
    load = loader(model, adapter)
    speakers = [("afinado", put_adapter(load(None), adapter, trained_base(adapter, model)))]
    if compare_base:
        speakers.insert(0, ("base", load(None)))
    return speakers


def clean_question(text: str, hint: str | None = None) -> str:
    """The question without control characters, refused when nothing but blanks is left.

    C0 and C1 controls and DEL (Unicode's Cc) go, except newline and tab, which are layout a question may have: the others
    are invisible on a terminal or move its cursor, and no question needs them. Lone surrogates (bytes of an argument
    that are not UTF-8) go too: no tokenizer encodes them."""
    kept = "".join(char for char in text if char in KEPT_CONTROLS or unicodedata.category(char) not in ("Cc", "Cs"))
    if not kept.strip():
        raise FarenseError("a pergunta está vazia.", hint)
    return kept


def context_length(model, tokenizer) -> int | None:
    """The most tokens the model reads at once: its config's max_position_embeddings (or equivalent), else the
    tokenizer's model_max_length when it is a real number (transformers puts 1e30 where it does not know)."""
    args = getattr(model, "args", None)
    for key in CONTEXT_KEYS:
        value = getattr(args, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def check_fits(speakers: list[tuple[str, tuple]], histories: dict[str, list[dict]], text: str, max_tokens: int) -> None:
    """Refuse, before generating, a question whose prompt (system message, conversation so far, question, counted with the
    model's chat template) and an answer of up to `max_tokens` tokens would not fit in the model's context: past it a
    model's positions are ones it never learnt, and a long prompt only takes long to come to nothing."""
    for name, (model, tokenizer) in speakers:
        limit = context_length(model, tokenizer)
        tokens = len(prompt_tokens(tokenizer, histories[name] + [{"role": "user", "content": text}]))
        if limit is not None and tokens + max_tokens > limit:
            raise FarenseError(f"a pergunta não cabe no contexto do modelo: o pedido tem {tokens} tokens e a resposta até "
                               f"{max_tokens}, mais do que os {limit} tokens de contexto do modelo.",
                               hint="encurte a pergunta (ou a conversa: 'sair' e recomece), ou baixe --max-tokens")


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chat(model: str, adapter: Path | None, question: str | None, system: str | None, max_tokens: int, compare_base: bool) -> None:
    """One answer to `question`, or a conversation on the terminal until 'sair' or Ctrl-D.

    With `compare_base`, each question is also answered by the base model without the adapter.
    """
    if max_tokens < 1:
        raise FarenseError(f"--max-tokens tem de ser pelo menos 1 (recebido {max_tokens}).")
    if question is not None:
        question = clean_question(question, hint="sem pergunta nenhuma, o chat abre o modo de conversa")
    speakers = chat_models(model, adapter_folder(adapter) if adapter else None, compare_base)
    histories = {name: [{"role": "system", "content": system}] if system else [] for name, _ in speakers}

    def ask(text: str) -> None:
        check_fits(speakers, histories, text, max_tokens)
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
        if not text:  # a blank line (Enter alone) asks again
            continue
        try:
            ask(clean_question(text))
        except FarenseError as refused:  # a refused line is said and the conversation goes on
            print(f"erro: {refused}", file=sys.stderr)
