"""The README's Python example runs as written, and its set-up section has exactly two commands."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_setup_section_has_exactly_two_commands():
    setup = README.read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert [c.strip() for c in commands] == [
        "pip install torch==2.13.0 -e . && mtgan train",
        'pip install torch==2.13.0 -e ".[test]" && pytest',
    ]


@pytest.mark.slow
def test_python_example_runs_as_written(tmp_path, monkeypatch):
    example = _blocks("python")[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "runs" / "api-demo" / "checkpoints" / "latest").read_text().strip() == (
        "step-0000300"
    )
    assert os.path.exists(tmp_path / "runs" / "api-demo" / "samples")


def test_own_networks_example_trains_and_the_own_loop_runs(tmp_path, monkeypatch, tiny):
    from mtgan.config import load_config
    from mtgan.training import Trainer

    _, factory, loop = _blocks("python")
    (tmp_path / "mynets.py").write_text(factory)
    monkeypatch.syspath_prepend(str(tmp_path))
    trainer = Trainer(load_config("pertask", [*tiny, "model.arch=mynets:build"]))
    records = [trainer.train_step(record=True) for _ in range(2)]
    assert records[-1]["skipped"] == 0
    assert "shared by G0–G2" in trainer.model.describe()
    exec(compile(loop, "README.md", "exec"), {})
