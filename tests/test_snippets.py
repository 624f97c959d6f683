"""The snippet runner stops at the first failing snippet and names it; snippets see the tiny profile."""

from pathlib import Path

from farense_guide.book.snippets import run_all


def test_runner_runs_in_order_with_the_tiny_profile_and_stops_at_the_first_failure(tmp_path, capfd):
    snippets = tmp_path / "snippets"
    snippets.mkdir()
    (snippets / "01_perfil.sh").write_text('echo "$FARENSE_PROFILE" > perfil.txt\n')
    (snippets / "02_python.py").write_text('from pathlib import Path\nPath("python.txt").write_text("ok")\n')
    (snippets / "03_falha.sh").write_text("false\n")
    (snippets / "04_nunca.sh").write_text("touch nunca.txt\n")
    assert run_all(tmp_path, only="_") == 1
    assert (tmp_path / "perfil.txt").read_text().strip() == "tiny"
    assert (tmp_path / "python.txt").exists() and not (tmp_path / "nunca.txt").exists()
    assert "o snippet snippets/03_falha.sh falhou" in capfd.readouterr().err


def test_a_separate_snippet_runs_beside_the_others_in_its_own_copy(tmp_path, capfd, monkeypatch):
    from farense_guide.book import snippets as runner

    work = tmp_path / "work"
    (work / "snippets").mkdir(parents=True)
    (work / "snippets" / "01_lado.sh").write_text('touch lado.txt\necho "do lado em $PWD"\n')
    (work / "snippets" / "02_seguinte.sh").write_text("test ! -e lado.txt\n")  # the separate one writes elsewhere
    monkeypatch.setattr(runner, "SEPARATE", ("01_lado.sh",))
    assert run_all(work, only="_") == 0
    out = capfd.readouterr().out
    copy = Path(out.split("do lado em ")[1].split()[0])
    assert not (work / "lado.txt").exists() and copy != work and not copy.exists()  # its own copy, removed after
    assert out.index("02_seguinte.sh") < out.index("01_lado.sh (ao lado") and "do lado" in out
    (work / "snippets" / "01_lado.sh").write_text("exit 3\n")
    assert run_all(work, only="_") == 1
    assert "o snippet snippets/01_lado.sh falhou (código 3)" in capfd.readouterr().err
