"""Hostile or broken run directories: refused with a RunError, never executed, never a traceback."""

from __future__ import annotations

import contextlib
import os
import pickle
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY  # tests/conftest.py: the tiny overrides, for a module fixture

from mtgan import api
from mtgan.cli import main
from mtgan.config import load_config
from mtgan.errors import RunError
from mtgan.training.checkpoint import STATE, WEIGHTS, latest_checkpoint


class Payload:
    """Unpickling this runs a shell command: what a malicious state.pt would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _write_payload(file: Path, marker: Path, how: str) -> None:
    state = {"step": 6, "evil": Payload(marker)}
    if how == "torch.save":
        torch.save(state, file)
    else:
        with file.open("wb") as f:
            pickle.dump(state, f, protocol=2)  # the protocol torch's own unpickler expects


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny finished run (6 steps, checkpoints at 3 and 6), trained once for the module."""
    out = tmp_path_factory.mktemp("safe-loading") / "run"
    api.train("pertask", list(TINY), out=out, quiet=True)
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the tiny run that a test may damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _latest(run: Path) -> Path:
    path = latest_checkpoint(run / "checkpoints")
    assert path is not None and path.name == "step-0000006"
    return path


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_payload_is_live_when_loaded_unsafely(tmp_path, how):
    # Control: the crafted file really runs its command under a plain unpickler.
    marker = tmp_path / "control"
    _write_payload(tmp_path / STATE, marker, how)
    with contextlib.suppress(RuntimeError):  # a bare pickle runs, then fails torch's magic check
        torch.load(tmp_path / STATE, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_resume_refuses_a_pickle_payload_in_state_pt(run, tmp_path, how):
    marker = tmp_path / "pwned"
    _write_payload(_latest(run) / STATE, marker, how)
    with pytest.raises(RunError, match=r"cannot load training state from .*state\.pt"):
        api.train(resume=run, overrides=["train.steps=10"], quiet=True)
    assert not marker.exists()


def test_cli_resume_refuses_a_pickle_payload_with_exit_code_2(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    _write_payload(_latest(run) / STATE, marker, "torch.save")
    code = main(["train", "--resume", str(run), "train.steps=10", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "state.pt" in err and "Traceback" not in err
    assert not marker.exists()


def test_sampling_refuses_a_pickle_payload(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    _write_payload(_latest(run) / STATE, marker, "pickle.dump")
    with pytest.raises(RunError, match=r"state\.pt"):
        api.open_run(run).sample(0, n=2)
    code = main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and "state.pt" in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "s.png").exists()


def test_intact_run_still_samples(run):
    # The fixture run itself is sound, so the refusals above are about the damage alone.
    images = api.open_run(run).sample(0, n=2)
    assert images.shape == (2, 1, 28, 28)


def test_corrupt_weights_file_is_a_run_error_naming_it(run, tmp_path, capsys):
    weights = _latest(run) / WEIGHTS
    weights.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(RunError, match=r"weights\.safetensors"):
        api.train(resume=run, overrides=["train.steps=10"], quiet=True)
    with pytest.raises(RunError, match=r"weights\.safetensors"):
        api.open_run(run).sample(0, n=2)
    code = main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "weights.safetensors" in err and "Traceback" not in err


def test_truncated_state_file_is_a_run_error_naming_it(run):
    state = _latest(run) / STATE
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(RunError, match=r"state\.pt"):
        api.train(resume=run, overrides=["train.steps=10"], quiet=True)


@pytest.mark.parametrize("hidden", ["[32,32]", "[16,16,16]"], ids=["wider", "deeper"])
def test_resume_with_a_different_network_is_a_run_error(run, hidden, capsys):
    with pytest.raises(RunError, match="step-0000006"):
        api.train(resume=run, overrides=[f"model.g_hidden={hidden}"], quiet=True)
    code = main(["train", "--resume", str(run), f"model.g_hidden={hidden}", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("override", ["train.ema=null", "model.g_norm=none"])
def test_resume_with_other_layers_says_the_checkpoint_does_not_fit(run, override):
    with pytest.raises(RunError, match=r"step-0000006 does not fit this model.*unexpected"):
        api.train(resume=run, overrides=[override], quiet=True)


@pytest.mark.parametrize(
    "override",
    ["model.g_hidden=[32,32]", "model.g_hidden=[16,16,16]", "model.share.generator=none"],
)
def test_resume_with_other_layer_shapes_says_the_checkpoint_does_not_fit(run, override):
    with pytest.raises(RunError, match="does not fit"):
        api.train(resume=run, overrides=[override], quiet=True)


def test_refused_resume_leaves_the_run_config_unchanged(run):
    before = (run / "config.yaml").read_text()
    with pytest.raises(RunError):
        api.train(resume=run, overrides=["model.g_hidden=[32,32]"], quiet=True)
    assert (run / "config.yaml").read_text() == before
    assert load_config(run / "config.yaml").model.g_hidden == [16, 16]


def _no_run_written(out: Path) -> bool:
    return not any(p.exists() for p in (out, out / "config.yaml", out / "checkpoints"))


def test_out_below_a_regular_file_is_a_clean_error_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "run"
    with pytest.raises(RunError, match=rf"cannot write the run directory {out}"):
        api.train("pertask", list(TINY), out=out, quiet=True)
    code = main(["train", "pertask", *TINY, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(out) in err and "Traceback" not in err
    assert "run directory:" not in err  # printed only once training is about to start
    assert _no_run_written(out)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_inside_proc_is_a_clean_error(capsys):
    out = Path("/proc/mtgan-test-run")
    code = main(["train", "pertask", *TINY, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(out) in err and "Traceback" not in err
    assert not out.exists()


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def test_disk_full_is_a_clear_error_before_training_and_keeps_nothing_half_written(
    tmp_path, capsys
):
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "512k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        out = disk / "run"
        # The config fits in 512 kB; the first checkpoint of the full-size pertask model does not.
        code = main(["train", "pertask", "data.limit=20", "train.steps=5", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert "cannot write checkpoint" in err and "No space left on device" in err
        assert "train:" not in err  # no training step ran
        assert not (out / "checkpoints" / "latest").exists()
        assert not list((out / "checkpoints").glob(".tmp-*"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
