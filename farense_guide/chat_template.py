"""Conversations rendered with each model's own chat template.

Some templates (Mistral-Instruct's among them) reject a `system` message ("Conversation roles
must alternate …"), and others accept it but drop it without a word. For those, the system
prompt is folded into the first user turn, so training, evaluation, chat and the data step
all show the model the same text, with the instructions it was trained after.
"""

from __future__ import annotations

SYSTEM_PROBE = "farense-guide: sonda da mensagem de sistema"
USER_PROBE = "farense-guide: sonda do utilizador"

_accepts_system: dict[str, bool] = {}


def template_text(tokenizer) -> str:
    template = getattr(tokenizer, "chat_template", None)
    return template if isinstance(template, str) else repr(template)


def accepts_system(tokenizer) -> bool:
    """Whether the template renders a system message (neither raising nor silently dropping it)."""
    from jinja2.exceptions import TemplateError

    key = template_text(tokenizer)
    if key not in _accepts_system:
        probe = [{"role": "system", "content": SYSTEM_PROBE}, {"role": "user", "content": USER_PROBE}]
        try:
            text = tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False)
            _accepts_system[key] = SYSTEM_PROBE in text
        except TemplateError:
            _accepts_system[key] = False
    return _accepts_system[key]


def fold_system(messages: list[dict]) -> list[dict]:
    """The system prompt moved to the start of the first user turn (a blank line between them)."""
    if not messages or messages[0].get("role") != "system":
        return messages
    system, rest = messages[0]["content"], messages[1:]
    if rest and rest[0].get("role") == "user":
        return [{**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


def for_template(tokenizer, messages: list[dict]) -> list[dict]:
    """`messages` as this tokenizer's template can take them: unchanged, or with the system prompt folded."""
    if messages and messages[0].get("role") == "system" and not accepts_system(tokenizer):
        return fold_system(messages)
    return messages


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as text, through the model's template (system folded where needed)."""
    return tokenizer.apply_chat_template(for_template(tokenizer, messages), add_generation_prompt=add_generation_prompt, tokenize=False)


def records_for_template(tokenizer, records: list[dict]) -> list[dict]:
    """Chat records with their messages adapted to the template; other records unchanged."""
    return [{**r, "messages": for_template(tokenizer, r["messages"])} if "messages" in r else r for r in records]


FOLDING_PREAMBLE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- if messages | length > 1 and messages[1]['role'] == 'user' -%}"
    "{%- set messages = [{'role': 'user', 'content': messages[0]['content'] + '\\n\\n' + messages[1]['content']}] + messages[2:] -%}"
    "{%- else -%}"
    "{%- set messages = [{'role': 'user', 'content': messages[0]['content']}] + messages[1:] -%}"
    "{%- endif -%}"
    "{%- endif -%}"
)


def folding_template(template: str) -> str:
    """The template with a preamble that folds a system message as `fold_system` does.

    A fused model carries it, so a server or client that sends a system message gets the text the model was trained on.
    """
    return FOLDING_PREAMBLE + template
