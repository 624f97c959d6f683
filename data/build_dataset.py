"""Build data/{train,valid,test}.jsonl and data/sources.md from data/source/*.yaml.

    python data/build_dataset.py [--facts PATH] [--output data]

Every answer rests on numbered facts of the Farense fact sheet (../shared/farense/facts.md;
data/sources.md keeps the ones used, with their sources, so the build also works without it).
Splits are deterministic. Test questions come only from facts with two independent sources
("certain") and from out-of-scope items; no wording is shared between splits, and the
question a follow-up conversation opens with always stays in train.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from farense_guide.data.records import FARENSE_SYSTEM_PROMPT as SYSTEM_PROMPT  # noqa: E402
from farense_guide.data.records import normalise  # noqa: E402
from farense_guide.runs import write_jsonl  # noqa: E402

SEED = 1910
STYLES = ("direct", "colloquial", "typos")
EVAL_SHARE = 0.1  # of all examples, for valid and for test each
MIN_TRAIN_PER_ITEM = 2
FACT_LINE = re.compile(r"^(\d+)\. \[(certain|single-source)\] (.+?) — Fonte\(s\): (.+)$")


@dataclass
class Fact:
    number: int
    confidence: str
    text: str
    sources: str


@dataclass
class Question:
    item: dict
    style: str
    text: str


def read_facts(path: Path) -> dict[int, Fact]:
    facts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := FACT_LINE.match(line.strip()):
            number, confidence, text, sources = match.groups()
            facts[int(number)] = Fact(int(number), confidence, text, sources)
    if not facts:
        sys.exit(f"{path}: nenhum facto encontrado")
    return facts


def read_items(source: Path, facts: dict[int, Fact]) -> list[dict]:
    items, errors = [], []
    for path in sorted(source.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            item["file"] = path.name
            items.append(item)
    ids = [item["id"] for item in items]
    errors += [f"id repetido: {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    by_id = {item["id"]: item for item in items}
    for item in items:
        where = f"{item['file']}:{item['id']}"
        errors += [f"{where}: facto {n} não existe" for n in item.get("facts", []) if n not in facts]
        if item.get("kind") != "out_of_scope" and not item.get("facts"):
            errors.append(f"{where}: sem factos")
        follow = item.get("follow_up")
        if follow and follow.get("after") not in by_id:
            errors.append(f"{where}: follow_up.after «{follow.get('after')}» não existe")
        if not item.get("answer", "").strip():
            errors.append(f"{where}: resposta vazia")
    if errors:
        sys.exit("\n".join(errors))
    return items


def questions_of(item: dict) -> list[Question]:
    found = [Question(item, style, text) for style in STYLES for text in item.get(style, [])]
    if follow := item.get("follow_up"):
        found += [Question(item, "follow_up", text) for text in follow.get("questions", [])]
    return found


def opening_question(item: dict) -> str:
    """The question a follow-up conversation starts with: the item's first direct one."""
    return item["direct"][0]


def conversation(question: Question, by_id: dict[str, dict]) -> dict:
    item = question.item
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    if question.style == "follow_up":
        before = by_id[item["follow_up"]["after"]]
        messages += [{"role": "user", "content": opening_question(before)}, {"role": "assistant", "content": before["answer"]}]
    messages += [{"role": "user", "content": question.text}, {"role": "assistant", "content": item["answer"]}]
    meta = {"id": item["id"], "kind": item.get("kind", "fact"), "style": question.style, "facts": item.get("facts", [])}
    return {"messages": messages, "meta": meta}


def assign_splits(items: list[dict], facts: dict[int, Fact]) -> dict[str, list[Question]]:
    rng = random.Random(SEED)
    followed = {i["follow_up"]["after"] for i in items if i.get("follow_up")}
    openings = {opening_question(item) for item in items if item["id"] in followed}
    every = {item["id"]: questions_of(item) for item in items}
    pools = {}  # per item: the questions that may leave train, shuffled
    for item in items:
        pools[item["id"]] = [q for q in every[item["id"]] if q.text not in openings]
        rng.shuffle(pools[item["id"]])
    target = round(sum(map(len, every.values())) * EVAL_SHARE)
    splits: dict[str, list[Question]] = {"test": [], "valid": []}
    for split in ("test", "valid"):
        order = [item for item in items if split == "valid" or item.get("kind") == "out_of_scope"
                 or all(facts[n].confidence == "certain" for n in item["facts"])]
        rng.shuffle(order)
        while len(splits[split]) < target:
            before = len(splits[split])
            for item in order:
                movable = len(pools[item["id"]]) - MIN_TRAIN_PER_ITEM
                if movable > 0 and len(splits[split]) < target:
                    splits[split].append(pools[item["id"]].pop())
            if len(splits[split]) == before:
                sys.exit(f"perguntas insuficientes para {target} exemplos em {split}")
    held_out = {id(q) for questions in splits.values() for q in questions}
    train = [q for item in items for q in every[item["id"]] if id(q) not in held_out]
    rng.shuffle(train)
    return {"train": train, **splits}


def check_no_shared_wording(splits: dict[str, list[Question]]) -> None:
    seen: dict[str, str] = {}
    for name, questions in splits.items():
        for q in questions:
            key = normalise(q.text)
            if key in seen:
                sys.exit(f"pergunta repetida ({seen[key]} e {name}): {q.text}")
            seen[key] = name


def write_sources(path: Path, items: list[dict], facts: dict[int, Fact]) -> None:
    used = sorted({n for item in items for n in item.get("facts", [])})
    lines = [
        "# Fontes dos factos usados no conjunto de dados",
        "",
        "Gerado por `data/build_dataset.py` a partir da ficha de factos verificados do projeto. Cada resposta do",
        "conjunto de dados assenta nos factos abaixo (o campo `meta.facts` de cada exemplo diz quais).",
        "`certain`: pelo menos duas fontes independentes; `single-source`: uma só fonte (nunca usados no teste).",
        "",
    ]
    lines += [f"{n}. [{facts[n].confidence}] {facts[n].text} — Fonte(s): {facts[n].sources}" for n in used]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = HERE.parent.parent / "shared" / "farense" / "facts.md"
    parser.add_argument("--facts", type=Path, default=shared if shared.exists() else HERE / "sources.md")
    parser.add_argument("--output", type=Path, default=HERE)
    args = parser.parse_args()
    facts = read_facts(args.facts)
    items = read_items(HERE / "source", facts)
    by_id = {item["id"]: item for item in items}
    splits = assign_splits(items, facts)
    check_no_shared_wording(splits)
    for name, questions in splits.items():
        write_jsonl(args.output / f"{name}.jsonl", [conversation(q, by_id) for q in questions])
    write_sources(args.output / "sources.md", items, facts)
    print(", ".join(f"{name}: {len(qs)}" for name, qs in splits.items()) + f" · {len(items)} itens · {args.output}")


if __name__ == "__main__":
    main()
