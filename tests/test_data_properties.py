"""Property: valid records survive validate -> clean -> load unchanged."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farense_guide.data.clean import clean
from farense_guide.data.records import normalise, read_jsonl, user_text
from farense_guide.data.validate import validate
from farense_guide.runs import write_jsonl

# Any printable text, accents and emoji included; no control characters, never blank.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
).filter(lambda s: s.strip())
turn = st.tuples(text, text)
chat = st.builds(
    lambda system, turns: {"messages": ([{"role": "system", "content": system}] if system else [])
                           + [m for q, a in turns for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]},
    st.one_of(st.none(), text), st.lists(turn, min_size=1, max_size=3),
)
completion = st.builds(lambda p, c: {"prompt": p, "completion": c}, text, text)
plain = st.builds(lambda t: {"text": t}, text)


def unique_questions(records):
    return len({normalise(user_text(r)) for r in records}) == len(records) and all(normalise(user_text(r)) for r in records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(chat, min_size=1, max_size=6), st.lists(completion, min_size=1, max_size=6), st.lists(plain, min_size=1, max_size=6)))
def test_valid_records_survive_validate_clean_load(tmp_path_factory, records):
    if not unique_questions(records):
        return  # near-duplicates are rightly rejected; covered elsewhere
    folder = tmp_path_factory.mktemp("prop")
    write_jsonl(folder / "train.jsonl", records)
    assert validate(folder).problems == []
    out = folder / "clean"
    changes = clean(folder, out)
    assert changes == []
    assert read_jsonl(out / "train.jsonl") == records
    assert json.loads((out / "clean_report.json").read_text())["kept"] == {"train": len(records)}
