"""The rules that pick the answers chapters 10 and 13 show (sections/answers.py, symptoms.py) and read the loss curves
(sections/curves.py), on small hand-made predictions and loss curves."""

import json
import math

import pytest

from farense_guide.book.sections import answers, curves, symptoms


def row(item_id, tuned, reference="O Farense foi fundado em 1910.", base="", kind="fact", question="Quando foi fundado o Farense?",
        tuned_f1=0.0, base_f1=0.0, tuned_refusal=0.0, base_refusal=0.0, exact=0.0, tuned_log_prob=-0.05, base_log_prob=-3.0):
    """One line of predictions.jsonl, with only the scores the rules read."""
    return {"id": item_id, "kind": kind, "question": question, "reference": reference, "base_answer": base, "tuned_answer": tuned,
            "base_scores": {"f1": base_f1, "refusal": base_refusal, "exact_match": 0.0, "candidates": [base_log_prob, -4.0]},
            "tuned_scores": {"f1": tuned_f1, "refusal": tuned_refusal, "exact_match": exact, "candidates": [tuned_log_prob, -4.0]}}


def test_repetition_counts_repeated_word_trigrams():
    assert symptoms.repetition("O Farense foi fundado em 1910 na cidade de Faro.") == 0
    # "olé olé olé" six times: 4 trigrams of which only 1 is new
    assert symptoms.repetition("Olé, olé, olé, olé, olé, olé") == pytest.approx(3 / 4)
    assert symptoms.repetition("Sim.") == 0  # too short to have a trigram


def test_loops_keep_the_repetitive_answers_most_repetitive_first_ties_by_id():
    rows = [row("b", "", base="que é que que é que que é que que é que"), row("a", "", base="que é que que é que que é que que é que"),
            row("c", "", base="O Farense foi fundado em 1910."), row("d", "", base="sim sim sim sim sim sim sim sim sim sim sim sim")]
    assert [r["id"] for r in symptoms.loops(rows, "base")] == ["d", "a", "b"]
    assert symptoms.loops(rows, "tuned") == []


@pytest.mark.parametrize("text,cut", [("Foi em 1910.", False), ("Foi em 1910!", False), ("«Sim.»", False), ("", False),
                                       ("O Farense venceu o Salgueiros por 4-", True), ("o que é que o que é", True)])
def test_an_answer_without_a_final_stop_is_unfinished(text, cut):
    assert symptoms.unfinished(text) is cut


def test_cut_off_answers_longest_first():
    rows = [row("a", "", base="curta sem ponto"), row("b", "", base="uma resposta bem mais comprida sem ponto"), row("c", "", base="Acabou.")]
    assert [r["id"] for r in symptoms.cut_off(rows, "base")] == ["b", "a"]


def test_best_and_worst_by_f1_ties_broken_by_id():
    rows = [row("c", "x", tuned_f1=1.0), row("a", "x", tuned_f1=1.0), row("b", "x", tuned_f1=0.5), row("d", "x", tuned_f1=0.0),
            row("e", "x", tuned_f1=0.0)]
    assert [r["id"] for r in answers.ranked(rows, best=True)][:3] == ["a", "c", "b"]
    assert [r["id"] for r in answers.ranked(rows, best=False)][:3] == ["d", "e", "b"]


def test_a_neighbouring_fact_is_another_training_answer_recited_whole():
    train = ["O Farense foi fundado em 1910.", "Hassan Nader transferiu-se para o Benfica.",
             "Não sei. Não tenho informação sobre o futuro."]
    rows = [row("own", "o farense foi fundado em 1910", exact=1.0, tuned_f1=1.0),  # its own reference: not a neighbour
            row("hassan", "Hassan Nader transferiu-se para o Benfica!", reference="Hassan Nader marcou 21 golos.", tuned_f1=0.4),
            row("novel", "O Hassan jogou no Farense.", reference="Hassan Nader marcou 21 golos.", tuned_f1=0.3),
            row("refusal", "Não sei. Não tenho informação sobre o futuro.", reference="Não sei quem é.", kind="out_of_scope",
                tuned_refusal=1.0, tuned_f1=0.5)]
    assert [r["id"] for r in answers.recited(rows, train)] == ["refusal", "hassan"]  # highest F1 first
    assert [r["id"] for r in answers.neighbours(rows, train)] == ["hassan"]  # a refusal is the refusal rule's


def test_refusal_rules_look_at_the_kind_and_the_refusal_flag():
    rows = [row("oos-b", "O Dragão leva 50 mil.", kind="out_of_scope"), row("oos-a", "Não sei.", kind="out_of_scope", tuned_refusal=1.0),
            row("fact-a", "Não sei.", tuned_refusal=1.0), row("fact-b", "Foi em 1910.")]
    assert [r["id"] for r in symptoms.answered_out_of_scope(rows)] == ["oos-b"]
    assert [r["id"] for r in symptoms.refused_facts(rows)] == ["fact-a"]
    assert [r["id"] for r in symptoms.answered_out_of_scope(rows, "base")] == ["oos-a", "oos-b"]  # the base refused nothing


def test_base_better_widest_gap_first_and_echoes():
    rows = [row("a", "x", base_f1=0.4, tuned_f1=0.1), row("b", "x", base_f1=0.3, tuned_f1=0.25), row("c", "x", base_f1=0.1, tuned_f1=0.9)]
    assert [r["id"] for r in symptoms.base_better(rows)] == ["a", "b"]
    assert symptoms.echoes("E basquetebol, também tem?", "E basquetebol, também tem? E que não também?")
    assert not symptoms.echoes("E basquetebol, também tem?", "O Farense foi fundado em 1910.")


def test_answer_perplexity_is_the_exponential_of_minus_the_mean_log_probability():
    assert answers.answer_perplexity({"candidates": [-math.log(2), -9.0]}) == pytest.approx(2)
    assert answers.answer_perplexity({"candidates": [0.0]}) == 1


@pytest.mark.parametrize("losses,reading", [([3.3, 1.2, 0.4, 0.1], curves.FELL), ([3.3, 6.1, 7.0], curves.DIVERGED),
                                             ([3.3, 0.50, 0.40, 0.43], curves.ROSE),  # 7.5% above its minimum
                                             ([3.3, 0.40, 0.41], curves.FELL),  # 2.5%: noise, not a rise
                                             ([3.3], None)])
def test_curve_reading(losses, reading):
    assert curves.curve_reading(losses) == reading


def test_study_readings_mark_runs_that_stop_far_from_the_lowest_loss():
    runs = [{"name": name, "valid": valid, "train": 0.1, "learning_rate": 5e-4, "f1": None}
            for name, valid in (("long", [3.3, 0.1]), ("short", [3.3, 0.21]), ("near", [3.3, 0.19]), ("bad", [3.3, 7.0]))]
    readings = curves.study_readings(runs)
    assert [r["name"] for r in readings[curves.FAR_OFF]] == ["short"]
    assert [r["name"] for r in readings[curves.FELL]] == ["long", "near"]
    assert [r["name"] for r in readings[curves.DIVERGED]] == ["bad"] and readings[curves.ROSE] == []


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def conversation(question, answer):
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def test_fragment_of_a_small_run_says_when_a_rule_finds_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(curves, "STUDY", tmp_path / "no-study")
    data, run = tmp_path / "data", tmp_path / "run"
    write_jsonl(data / "train.jsonl", [conversation("Quando foi fundado?", "O Farense foi fundado em 1910."),
                                       conversation("E quando foi fundado?", "O Farense foi fundado em 1910."),
                                       conversation("Onde joga?", "No Estádio de São Luís | em Faro.")])
    write_jsonl(data / "valid.jsonl", [conversation("Fundado quando?", "O Farense foi fundado em 1910.")])
    (run / "evaluation").mkdir(parents=True)
    (run / "evaluation" / "evaluation_report.json").write_text(json.dumps({"max_tokens": 96, "data": {"test": {"path": str(data / "test.jsonl")}}}))
    write_jsonl(run / "evaluation" / "predictions.jsonl", [
        row("a", "O Farense foi fundado em 1910.", exact=1.0, tuned_f1=1.0, base="olé olé olé olé olé olé"),
        row("b", "No Estádio de São Luís | em Faro.", reference="O Farense foi fundado em 1910.", question="Em que ano nasceu o Farense?",
            tuned_f1=0.2, tuned_log_prob=-1.0)])
    write_jsonl(run / "metrics.jsonl", [{"type": "valid", "step": 0, "val_loss": 3.0}, {"type": "train", "step": 5, "train_loss": 1.0},
                                        {"type": "valid", "step": 10, "val_loss": 1.0}])
    files, values = answers.fragment(run)
    shown, symptom = symptoms.fragment(run)
    study, curve = curves.fragment(run)

    assert all(name.startswith("answers.") for name in values) and all(name.startswith("symptoms.") for name in symptom)
    assert all(name.startswith("curves.") for name in curve)
    assert answers.NONE in shown["symptoms_out_of_scope.md"] and answers.NONE in shown["symptoms_refused_facts.md"]
    assert answers.NONE in shown["symptoms_base_better.md"] and "Nenhum run do estudo" in study["curves_study.md"]
    assert "olé olé" in shown["symptoms_loops.md"] and "olé olé" in shown["symptoms_unfinished.md"]
    assert "São Luís \\| em Faro" in files["answers_neighbours.md"]  # escaped: the pipe does not split the table
    best = files["answers_best_worst.md"]
    assert best.index("| Quando foi fundado o Farense?") < best.index("**As piores**")
    assert values["answers.canonical.own"] == "1" and values["answers.canonical.other"] == "1" and values["answers.neighbours.count"] == "1"
    assert values["answers.memory.references_in_train"] == "2" and values["answers.memory.min_copies"] == "2"
    assert values["answers.memory.max_copies"] == "2" and values["answers.memory.questions_in_train"] == "0"
    assert values["answers.memory.valid_in_train"] == "1" and symptom["symptoms.loops.base"] == "1"
    assert values["answers.ppl.low_count"] == "1" and values["answers.ppl.low_exact"] == "1"  # exp(1) > 1,5
    assert values["answers.best.exact"] == "1" and values["answers.worst.recited"] == "1"  # a is its reference; b, worst, is recited
    assert curve["curves.own.reading"] == curves.FELL and curve["curves.own.falls"] == curve["curves.own.intervals"] == "1"
    assert curve["curves.runs"] == "0" and curve["curves.lowest"] == "—"
    assert symptom["symptoms.max_tokens"] == "96" and symptom["symptoms.facts.items"] == "2"
    assert values["answers.canonical.commonest_error"].startswith("recitar")  # b recites, no answer is novel


def test_the_commonest_error_follows_the_counts():
    assert answers.commonest_error(novel=45, other=62).startswith("recitar")
    assert answers.commonest_error(novel=62, other=45).startswith("escrever")


def test_an_older_evaluation_without_per_question_scores_gives_dashes():
    old = row("a", "Foi em 1910.")
    del old["tuned_scores"]["candidates"], old["base_scores"]["candidates"]
    assert answers.answer_perplexity(old["tuned_scores"]) is None
    assert answers.perplexities([old], "tuned") == []
    assert answers.perplexity_values([old])["median"] == answers.perplexity_values([old])["low_count"] == "—"


def test_study_curves_leave_out_runs_with_the_loss_on_the_prompt_and_find_the_widest_gap(tmp_path):
    def study_run(name, valid, train, mask_prompt=True, f1=None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"profile": {"mask_prompt": mask_prompt, "learning_rate": 5e-4}}))
        write_jsonl(folder / "metrics.jsonl", [*({"type": "valid", "val_loss": v} for v in valid), {"type": "train", "train_loss": train}])
        if f1 is not None:
            (folder / "evaluation").mkdir()
            (folder / "evaluation" / "evaluation_report.json").write_text(json.dumps({"tuned": {"f1": {"mean": f1}}}))

    study_run("e3", [3.3, 0.2, 0.1], 0.05, f1=0.44)
    study_run("e4", [3.3, 0.2, 0.09], 0.01, f1=0.45)  # the widest gap among the runs that fell to the end
    study_run("e1", [3.3, 0.6], 0.3, f1=0.28)  # far from the lowest: its gap, 0.3, does not count
    study_run("nomask", [4.0, 0.3], 0.2, mask_prompt=False)
    runs = curves.study_runs(tmp_path)
    assert [run["name"] for run in runs] == ["e1", "e3", "e4"]
    readings = curves.study_readings(runs)
    values = curves.study_values(readings)
    assert values["gap_name"] == "e4" and values["gap_f1"] == "0,450"
    assert values["far_off"] == "1" and values["lowest_name"] == "e4"
    assert values["best_f1"] == "0,450" and curves.own_values(tmp_path / "e3")["reading"] == curves.FELL
    table = curves.study_markdown(readings)
    assert "`e1`" in table and "os outros 2" in table and "| subiu depois do mínimo | 0 | nenhum |" in table
