"""The snippet runner stops at the first failing snippet and names it; snippets see the tiny profile."""

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
