"""The real site: fragments from a tiny evaluated run, `mkdocs build --strict`, then headless Chromium.

The browser test serves the built site on 127.0.0.1, opens every page, and asserts no console
errors, every image loaded, and that the search finds "Farense". Screenshots of the home page and
of the evaluation chapter land in build/screenshots/ for a person to look at.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

from farense_guide.book.pdf import PDF_NAME

SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("FARENSE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def site(site_project):
    project = site_project
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", "site"], cwd=project, capture_output=True,
                           text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    return project / "site"


def nav_pages(project: Path) -> list[str]:
    config = yaml.load((project / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = []
    for entry in config["nav"]:
        source = next(iter(entry.values()))
        pages.append("" if source == "index.md" else source.rsplit(".", 1)[0] + "/")
    return pages


def test_every_chapter_is_built_with_values_from_the_run(site_project, site):
    project = site_project
    values = json.loads((project / "guide" / "_generated" / "values.json").read_text(encoding="utf-8"))
    for page in nav_pages(project):
        assert (site / page / "index.html").is_file(), page
    evaluation = (site / "10-avaliacao" / "index.html").read_text(encoding="utf-8")
    assert values["run.name"] in evaluation  # the run banner names the run the numbers come from
    html = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    assert not re.findall(r"\[\[[a-z0-9_.-]+\]\]", html)  # every placeholder replaced (code like df[["a"]] stays)
    for figure in (project / "guide" / "_generated" / "figures").glob("*.png"):
        assert (site / "_generated" / "figures" / figure.name).read_bytes() == figure.read_bytes()
    assert (site / "_generated" / PDF_NAME).is_file() and f'href="_generated/{PDF_NAME}"' in (site / "index.html").read_text()


def test_an_unknown_value_name_stops_the_build(site_project, tmp_path):
    project = site_project
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns("site"))
    chapter = broken / "guide" / "16-conclusoes.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\nO valor [[run.nao_existe]].\n", encoding="utf-8")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", "site"], cwd=broken, capture_output=True,
                           text=True, timeout=300)
    assert built.returncode != 0
    assert "valor desconhecido [[run.nao_existe]]" in built.stderr


def chromium_or_skip() -> str:
    """The browser to drive. Without one the test skips with the reason shown (`pytest -rs`), except under CI
    (CI=true), where .ci/run installs Chromium: there a missing browser fails the test."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    reason = f"{CHROMIUM} não existe: instale o Chromium (apt-get install chromium) ou indique FARENSE_CHROMIUM"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (em CI o teste do navegador tem de correr)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def served(site):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_site_in_a_real_browser(site_project, served):
    project = site_project
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # Without the OpenBLAS LD_PRELOAD that `nox -s tests` sets for MLX: preloaded, Chromium's zygote dies.
        env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
        browser = playwright.chromium.launch(executable_path=chromium_or_skip(), args=["--no-sandbox"], env=env)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda message: errors.append(f"{page.url}: {message.text}") if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        for path in nav_pages(project):
            response = page.goto(served + path, wait_until="networkidle")
            assert response.status == 200, path
            broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            assert not broken, f"{path}: imagens que não carregaram: {broken}"
            if path == "10-avaliacao/":
                page.screenshot(path=str(SCREENSHOTS / "avaliacao.png"), full_page=True)
        page.goto(served, wait_until="networkidle")
        page.screenshot(path=str(SCREENSHOTS / "inicio.png"))
        page.keyboard.press("s")  # Material's search shortcut
        page.locator("input.md-search__input").press_sequentially("Farense", delay=30)  # key events, as a reader types
        page.wait_for_selector(".md-search-result__item", timeout=20000)
        results = page.locator(".md-search-result__item").count()
        page.screenshot(path=str(SCREENSHOTS / "pesquisa.png"))
        browser.close()
    assert not errors, "\n".join(errors)
    assert results > 0
