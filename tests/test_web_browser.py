"""`molvae serve` in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright
opens the four pages of a server running the shipped model, generates molecules in a property window,
checks that the structure images load, uploads a file, downloads results and finds errors shown in the page.

Each page's screenshot is saved into $MOLVAE_SCREENSHOTS when it is set (the README's pictures:
`MOLVAE_SCREENSHOTS=docs/images pytest tests/test_web_browser.py`), else into the test's temporary folder.
Skipped, with the reason, when Playwright or a Chromium binary is missing (`bash scripts/test.sh` installs
both where it can).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

from molvae.web import create_app  # noqa: E402
from molvae.web import work  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("MOLVAE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(shipped):
    """The app on a loopback port, served by uvicorn in a thread of this process (so tests can lighten
    the analog search); yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(create_app(shipped), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not srv.started:
        assert time.time() - t0 < 60 and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set MOLVAE_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS, headless=True)
        except Exception as exc:  # a binary that cannot start here
            pytest.skip(f"Chromium at {path} does not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(240_000)  # a loaded 2-core machine; the jobs themselves take seconds
    yield pg
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("MOLVAE_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_done(page) -> None:
    page.wait_for_function("() => { const m = document.querySelector('.job .message');"
                           " return m && (/^done|failed|cancelled/.test(m.textContent)); }")


def images_loaded(page, selector: str) -> int:
    """How many images matching `selector` have loaded (a decoded picture, not a broken icon)."""
    page.wait_for_function(f"() => [...document.querySelectorAll('{selector}')].every(i => i.complete)")
    return page.eval_on_selector_all(selector, "imgs => imgs.filter(i => i.naturalWidth > 0).length")


def download(page, fmt: str) -> str:
    with page.expect_download() as info:
        page.click(f".downloads a[data-format={fmt}]")
    return Path(info.value.path()).read_text()


def test_generate_in_a_window(server, page, shots):
    page.goto(server + "/generate")
    page.fill("input[name=n]", "6")
    page.fill("input[name=seed]", "3")
    page.fill("input[name=logp_min]", "2")
    page.fill("input[name=logp_max]", "3")
    page.click("button[type=submit]")
    wait_done(page)
    assert page.inner_text(".job .message").startswith("done"), page.inner_text(".job")
    assert images_loaded(page, ".grid figure.mol img") == 6
    assert "where logp>=2,logp<=3" in page.inner_text(".summary")
    values = [float(t.split()[1]) for t in page.locator(".props span").all_inner_texts() if t.startswith("logP")]
    assert len(values) == 6 and all(2 <= v <= 3 for v in values)
    page.screenshot(path=str(shots / "serve-generate.png"), full_page=False)
    rows = list(csv.DictReader(io.StringIO(download(page, "csv"))))
    assert len(rows) == 6 and all(2 <= float(r["logp"]) <= 3 for r in rows)
    assert download(page, "sdf").count("$$$$") == 6


def test_generate_analogs_of_a_molecule(server, page):
    near = "Cc1ccc(S(=O)(=O)N2CCCC2)cc1"
    page.goto(server + "/generate")
    page.fill("input[name=n]", "3")
    page.fill("input[name=seed]", "0")
    page.fill("input[name=near]", near)
    page.click("button[type=submit]")
    wait_done(page)
    assert page.inner_text(".job .message").startswith("done"), page.inner_text(".job")
    assert f"analogs of {near} at similarity >= 0.4" in page.inner_text(".summary")
    sims = [float(t.split()[1]) for t in page.locator(".props span").all_inner_texts() if t.startswith("similarity")]
    assert sims and len(sims) == page.locator(".grid figure.mol").count() and all(s >= 0.4 for s in sims)


def test_generate_error_is_shown_in_the_page(server, page):
    page.goto(server + "/generate")
    page.fill("input[name=n]", "3")
    page.fill("input[name=logp_min]", "5")
    page.fill("input[name=logp_max]", "1")
    page.click("button[type=submit]")
    page.wait_for_selector(".job .error:not([hidden])")
    assert "empty window" in page.inner_text(".job .error")


def test_score_an_uploaded_file(server, page, shots, tmp_path):
    upload = tmp_path / "library.csv"
    upload.write_text("name,smiles\nparacetamol,CC(=O)Nc1ccc(O)cc1\nibuprofen,CC(C)Cc1ccc(C(C)C(=O)O)cc1\n"
                      "broken,C1CC\n")
    page.goto(server + "/score")
    page.set_input_files("input[type=file]", str(upload))
    page.click("button[type=submit]")
    wait_done(page)
    assert page.inner_text(".job .message").startswith("done"), page.inner_text(".job")
    assert page.locator(".results-table tbody tr").count() == 3
    assert page.locator("td.reason").count() == 1  # the molecule RDKit cannot read, with its reason
    assert images_loaded(page, ".results-table img") == 3
    page.screenshot(path=str(shots / "serve-score.png"), full_page=False)
    rows = list(csv.DictReader(io.StringIO(download(page, "csv"))))
    assert [r["name"] for r in rows] == ["paracetamol", "ibuprofen", "broken"]
    assert rows[2]["reason"] and rows[0]["in_domain"] in ("True", "False")
    assert download(page, "sdf").count("$$$$") == 2  # the molecule RDKit cannot read is left out


def test_analogs(server, page, shots, monkeypatch):
    monkeypatch.setattr(work, "ANALOG_ROUNDS", 1)
    monkeypatch.setattr(work, "ANALOG_SETTINGS", {"n_starts": 8, "steps": 4, "candidates": 16, "refine_steps": 5})
    page.goto(server + "/analogs")
    assert images_loaded(page, "#query-image") == 1
    page.select_option("select[name=property]", "qed")
    page.fill("input[name=similarity]", "0.3")
    page.fill("input[name=seed]", "0")
    page.click("button[type=submit]")
    wait_done(page)
    assert page.inner_text(".job .message").startswith("done"), page.inner_text(".job")
    assert "analogs of CC(=O)Nc1ccc(O)cc1" in page.inner_text(".summary")
    n = page.locator(".results-table tbody tr").count()
    assert n >= 1 and images_loaded(page, ".results-table img") == n
    page.screenshot(path=str(shots / "serve-analogs.png"), full_page=False)


def test_model_page(server, page, shots):
    page.goto(server + "/model")
    assert "moses-smiles" in page.inner_text("article.card")
    assert page.locator("article.card table").count() >= 1  # the model card's tables rendered
    assert page.locator("nav a.active").inner_text() == "Model"
    page.screenshot(path=str(shots / "serve-model.png"), full_page=False)


def test_molecule_editor_fills_the_smiles_field(server, page, shots):
    from molvae import chem

    page.goto(server + "/analogs")
    page.click("#draw-toggle")
    page.wait_for_function("() => window.molvaeEditor !== undefined")
    page.evaluate("() => window.molvaeEditor.readGenericMolecularInput('Oc1ccccc1C(=O)O')")
    page.click("#use-drawing")
    value = page.input_value("#analogs-form input[name=smiles]")
    assert chem.canonical(value) == chem.canonical("O=C(O)c1ccccc1O")
    assert page.locator("#jsme_container canvas, #jsme_container svg").count() >= 1
    page.screenshot(path=str(shots / "serve-editor.png"), full_page=False)
