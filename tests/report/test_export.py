"""Sample exports for other tools: folders of uint8 PNGs and uint8 NHWC .npz, chunked generation
that does not depend on the chunk size, clear errors, and an FID of an exported folder computed
by torchmetrics that agrees with `Run.evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image
from torch import nn

from mtgan import api
from mtgan.cli import main
from mtgan.data import build_tasks
from mtgan.errors import MtganError
from mtgan.metrics.digits import DigitClassifier
from mtgan.metrics.features import DigitFeatures
from mtgan.report import export_kind, export_samples, task_folders, to_uint8_nhwc

REAL = 300  # real digits per task: more than the 128 feature dimensions, so FID is well posed
NAMES = ["digit 0", "digit 1", "digit 7"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> api.Run:
    overrides = [*TINY, f"data.limit={REAL}", f"eval.n={REAL}", "eval.metrics=[]"]
    out = tmp_path_factory.mktemp("export") / "run"
    return api.train("pertask", overrides, out=out, quiet=True)


def _read_pngs(folder: Path) -> torch.Tensor:
    """The folder's PNGs in name order → (N, 1, H, W) float in [0, 1]."""
    files = sorted(folder.glob("*.png"))
    arrays = np.stack([np.asarray(Image.open(f)) for f in files])
    return torch.from_numpy(arrays).float().div(255).unsqueeze(1)


def test_directory_export_is_one_folder_of_uint8_pngs_per_task(run, tmp_path):
    out = export_samples(run, tmp_path / "fid", n=37, batch=10)
    assert sorted(p.name for p in out.iterdir()) == sorted(["export.json", *NAMES])
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["n"] == 37 and manifest["step"] == run.step
    assert manifest["tasks"] == dict(zip(NAMES, NAMES))
    for k, name in enumerate(NAMES):
        files = sorted((out / name).iterdir())
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(37)]
        with Image.open(files[0]) as image:
            assert image.mode == "L" and image.size == (28, 28)
        # What `sample` makes, quantised: the same noise below the noise block. A chunk of 10
        # rounds its matrix products differently from one of 37 (~1e-7), so a pixel at a
        # rounding boundary may land one level off.
        written = (_read_pngs(out / name) * 255).round()
        expected = torch.from_numpy(to_uint8_nhwc(run.sample(k, 37))).permute(0, 3, 1, 2)
        assert (written - expected.float()).abs().max() <= 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_chunked_samples_do_not_depend_on_the_batch_size(run):
    run.noise_block = 8  # several noise blocks, and chunks that straddle none of them
    try:
        ref = torch.cat([s for s, _ in run.sample_chunks(None, 29, seed=5, batch=500)], dim=1)
        for batch in (1, 3, 8, 13):
            parts = [s for s, _ in run.sample_chunks(None, 29, seed=5, batch=batch)]
            assert all(p.shape[1] <= batch for p in parts)
            torch.testing.assert_close(torch.cat(parts, dim=1), ref, atol=1e-6, rtol=0)
        one = torch.cat(list(run.sample_batches("digit 7", 29, seed=5, batch=4)))
        torch.testing.assert_close(one, ref[2], atol=1e-6, rtol=0)
    finally:
        del run.noise_block
    assert ref.shape == (3, 29, 1, 28, 28)
    # Within one noise block the noise is `sample`'s.
    below = torch.cat(list(run.sample_batches(1, 29, seed=5, batch=6)))
    torch.testing.assert_close(below, run.sample(1, 29, seed=5), atol=1e-6, rtol=0)


def test_npz_is_uint8_nhwc_with_task_ids_for_all_tasks(run, tmp_path, capsys):
    one, every = tmp_path / "one.npz", tmp_path / "all.npz"
    assert main(["sample", str(run.path), "--task", "1", "--n", "5", "--out", str(one)]) == 0
    with np.load(one) as arrays:
        assert set(arrays) == {"x"} and arrays["x"].dtype == np.uint8
        assert arrays["x"].shape == (5, 28, 28, 1)
        expected = to_uint8_nhwc(run.sample(1, 5))
        assert np.abs(arrays["x"].astype(int) - expected).max() <= 1
    args = ["sample", str(run.path), "--task", "all", "--n", "4", "--batch", "3"]
    assert main([*args, "--out", str(every)]) == 0
    with np.load(every) as arrays:
        assert arrays["x"].shape == (12, 28, 28, 1)
        assert arrays["task"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
        assert arrays["task_names"].tolist() == NAMES
    assert "each of 3 tasks" in capsys.readouterr().out


def test_a_directory_gets_every_task_unless_one_is_named(run, tmp_path, capsys):
    out = tmp_path / "seven"
    assert main(["sample", str(run.path), "--task", "digit 7", "--n", "3", "--out", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["digit 7", "export.json"]
    assert main(["sample", str(run.path), "--n", "2", "--quiet", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(["export.json", *NAMES])
    assert "wrote 2 samples of each of 3 tasks" in capsys.readouterr().out


def test_bad_outputs_are_one_clear_error(run, tmp_path, capsys):
    def fails(*args: str) -> str:
        assert main(["sample", str(run.path), *args]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err

    assert "unknown output '.jpg'" in fails("--out", str(tmp_path / "x.jpg"))
    assert "one task's grid" in fails("--task", "all", "--out", str(tmp_path / "x.png"))
    assert "n >= 1" in fails("--n", "0", "--out", f"{tmp_path / 'zero'}/")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert "not empty; use --force" in fails("--n", "2", "--out", str(foreign))
    assert "refusing to replace it" in fails("--n", "2", "--force", "--out", str(foreign))
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "zero").exists()


def test_force_replaces_an_earlier_export_whole(run, tmp_path):
    out = export_samples(run, tmp_path / "e", n=3)
    with pytest.raises(MtganError, match="--force"):
        export_samples(run, out, n=2)
    export_samples(run, out, tasks=["digit 1"], n=2, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["digit 1", "export.json"]
    assert len(list((out / "digit 1").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["e"]  # the old export and temp dir are gone


def test_a_failed_export_leaves_the_old_one_and_no_temp_files(run, tmp_path, monkeypatch):
    import mtgan.report.export as export

    out = export_samples(run, tmp_path / "e", n=3)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "_save_pngs", full_disk)
    with pytest.raises(MtganError, match="No space left"):
        export_samples(run, out, n=5, force=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["e"]


def test_export_kind_and_folder_names():
    assert export_kind("a/") == "dir" and export_kind("samples") == "dir"
    assert export_kind("x.NPZ") == "npz" and export_kind("x.png") == "png"
    assert task_folders(["digit 3/edges", "a:b", "a_b", ".hidden"]) == [
        "digit 3_edges",
        "a_b",
        "a_b_2",
        "_hidden",
    ]
    x = torch.tensor([0.0, 0.5 / 255, 1.0, 2.0, float("nan"), 128 / 255]).view(1, 1, 2, 3)
    assert to_uint8_nhwc(x).reshape(-1).tolist() == [0, 0, 255, 255, 0, 128]


class _TorchmetricsDigitFeatures(nn.Module):
    """mtgan's digit-classifier features as torchmetrics' `feature` module, returned as float64
    (torchmetrics accumulates in the features' dtype)."""

    num_features = DigitClassifier.feature_dim

    def __init__(self, classifier: DigitClassifier) -> None:
        super().__init__()
        # Held in a tuple, not as a submodule: set_dtype(float64) would convert its weights,
        # and float64 convolutions are ~10x slower on the CPU; mtgan extracts in float32 too.
        self.classifier = (classifier,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier[0].features(x.float()).double()


def test_torchmetrics_fid_of_an_exported_folder_matches_run_evaluate(run, tmp_path):
    """An independent FID (torchmetrics' accumulated moments and eigenvalues, on the uint8 PNGs
    read back) against mtgan's (scipy sqrtm on the float samples): the same samples (the export
    at seed=config.seed, n=eval.n is what `evaluate` scores), the same real data."""
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    torch.manual_seed(0)
    # Any weights give comparable features; training the classifier would only cost time.
    classifier = DigitClassifier().eval()
    n = run.config.eval.n
    ours = run.evaluate(["fid"], extractor=DigitFeatures(classifier), write=False)
    out = export_samples(run, tmp_path / "fid", n=n, seed=run.config.seed, batch=128)
    data = build_tasks(run.config.data, run.config.seed)
    assert all(int(c) <= n for c in data.counts)  # so `evaluate` uses every real sample
    for k, name in enumerate(NAMES):
        metric = fid_module.FrechetInceptionDistance(
            feature=_TorchmetricsDigitFeatures(classifier), normalize=True
        ).set_dtype(torch.float64)
        metric.update(data.to_display(data.task(k)), real=True)
        metric.update(_read_pngs(out / name), real=False)
        theirs = float(metric.compute())
        assert theirs == pytest.approx(ours[f"fid/task{k}"], rel=1e-3), (k, theirs, ours)


def test_a_conditional_run_exports_the_classes_it_asked_for(tmp_path):
    small = ["data.limit=40", "model.g_hidden=[16,16]", "model.d_hidden=[16,16]", "model.z_dim=8"]
    small += ["train.steps=2", "train.batch_size=10", "train.loggers=[jsonl]"]
    small += ["train.progress=false", "eval.metrics=[]"]
    run = api.train("acgan", small, out=tmp_path / "acgan", quiet=True)
    with np.load(export_samples(run, tmp_path / "all.npz", n=23, batch=5)) as arrays:
        assert arrays["x"].shape == (23, 28, 28, 1) and arrays["x"].dtype == np.uint8
        assert arrays["y"].tolist() == [i % 10 for i in range(23)]
    with np.load(export_samples(run, tmp_path / "3.npz", n=4, label=3)) as arrays:
        assert arrays["y"].tolist() == [3] * 4
