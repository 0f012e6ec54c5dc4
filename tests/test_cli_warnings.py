"""mtgan's warnings reach the command line as one plain line each: `warning: <message>`."""

from __future__ import annotations

import warnings

import pytest

from mtgan import api
from mtgan.cli import _plain_warnings, main

RAW = ["eval.features=raw", "eval.n=20", "eval.metrics=[]"]


def test_a_warning_during_a_command_is_one_plain_line(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    api.train("pertask", [*tiny, *RAW], out=out, quiet=True)
    capsys.readouterr()
    # 20 real rows per task against 784-d raw features: FID warns that its reference is small
    assert main(["eval", str(out), "--metrics", "fid"]) == 0
    err = capsys.readouterr().err.splitlines()
    shown = [line for line in err if "FID reference" in line]
    assert len(shown) == 1, err
    assert shown[0].startswith("warning: FID reference (train split) smaller than")
    assert "UserWarning" not in shown[0] and ".py:" not in shown[0]
    assert not any("warnings.warn" in line or line.startswith(" ") for line in err), err


def test_only_mtgans_warnings_are_reworded(capsys):
    previous = []
    show = _plain_warnings(lambda *args: previous.append(args))
    show(UserWarning("two\n lines"), UserWarning, api.__file__, 1)
    show(UserWarning("from torch"), UserWarning, pytest.__file__, 1)
    assert capsys.readouterr().err == "warning: two lines\n"
    assert len(previous) == 1 and str(previous[0][0]) == "from torch"
    assert warnings.showwarning is not show  # main installs it only while a command runs
