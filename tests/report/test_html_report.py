"""`mtgan report`: the single-run page, and rebuilding a bench directory's page."""

from __future__ import annotations

import base64
import re

import pytest

from mtgan import api
from mtgan.cli import main
from mtgan.errors import RunError
from mtgan.report.html import image, page, table


def test_page_escapes_text_and_embeds_images():
    png = b"\x89PNG\r\n\x1a\nfake"
    html = page("a <b> & c", "sub", [])
    assert "<title>a &lt;b&gt; &amp; c</title>" in html
    tag = image(png, "alt", caption="x<y")
    assert base64.b64encode(png).decode() in tag and "x&lt;y" in tag
    assert "<td>&lt;script&gt;</td>" in table(["a"], [["<script>"]])


def test_report_of_a_run(tmp_path, tiny):
    run = tmp_path / "run"
    api.train("pertask", [*tiny, "eval.metrics=[fid,stability]", "eval.n=30", "eval.every=3"],
              out=run, quiet=True)  # fmt: skip
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    # Final values, one row per task, curves, losses, gradient norms, 2 sample overviews.
    assert "Final evaluation" in html and "digit 7" in html
    for title in ("Metrics over training", "Losses", "Gradient norms", "Samples", "config.yaml"):
        assert title in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 5
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from anywhere

    other = tmp_path / "elsewhere/r.html"
    assert api.report(run, other) == other and other.exists()


def test_report_of_something_else_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a run directory" in capsys.readouterr().err
    with pytest.raises(RunError):
        api.report(tmp_path / "missing")
