"""The HTML reports in a real browser: headless Chromium (Debian's `chromium`, installed by
.ci/run) driven by Playwright loads each page offline, every image decodes, and a screenshot is
taken. Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil

import pytest

from mtgan import api
from mtgan.bench.plan import BenchRun, Protocol
from mtgan.bench.suite import write_outputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a root, offline machine needs: no sandbox (root), no background requests that the
# closed network would refuse.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _check_page(browser, path, shot):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    page.screenshot(path=str(shot), full_page=True)
    height = page.evaluate("document.body.scrollHeight")
    page.close()
    return images, requests, height


def test_reports_load_with_every_image_in_chromium(browser, tmp_path, tiny):
    run = tmp_path / "bench/runs/pertask/seed0"
    api.train("pertask", [*tiny, "eval.metrics=[fid,stability]", "eval.n=30", "eval.every=3"],
              out=run, quiet=True)  # fmt: skip
    pages = {"run": api.report(run)}
    protocol = Protocol(tiny, ["fid", "stability"], 3)
    write_outputs(tmp_path / "bench", [BenchRun("pertask", "pertask", 0, run)], protocol)
    pages["bench"] = tmp_path / "bench/report.html"

    for name, path in pages.items():
        shot = tmp_path / f"{name}.png"
        images, requests, height = _check_page(browser, path, shot)
        assert len(images) >= 4, name
        broken = [alt for alt, complete, width in images if not complete or width == 0]
        assert not broken, f"{name}: images that did not load: {broken}"
        assert all(url.startswith(("file:", "data:")) for url in requests), requests
        assert height > 1500  # tables, three figures and the samples, laid out
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
