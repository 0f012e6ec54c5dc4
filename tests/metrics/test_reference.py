"""The FID protocol: the real set `eval.reference` names, eval.json's `protocol` record, the
warning for a reference too small to trust, and the error for a split that does not exist."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from mtgan import api
from mtgan.config import EvalConfig, load_config
from mtgan.data import build_tasks
from mtgan.errors import ConfigError
from mtgan.metrics import ModuleFeatures
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.training import Trainer

RAW = ["eval.features=raw", "eval.n=100", "eval.kid_subset_size=32", "eval.kid_subsets=5"]
HELDOUT = ["data.heldout=0.05"]  # 25 of each digit's 500 rows; the training rows: data.limit=40


def projection(width: int) -> ModuleFeatures:
    """Random linear features of 28×28 images: FID on them is fast."""
    torch.manual_seed(0)
    return ModuleFeatures(nn.Sequential(nn.Flatten(), nn.Linear(784, width)), f"proj{width}")


def test_eval_json_records_the_protocol_of_a_heldout_evaluation(tmp_path, tiny):
    overrides = [*tiny, *RAW, *HELDOUT, "eval.reference=heldout", "eval.metrics=[fid]"]
    run = api.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    written = json.loads((run.path / "eval.json").read_text())
    assert written["protocol"] == {
        "generated_per_task": 100,
        "reference": "heldout",
        "reference_per_task": [25, 25, 25],
        "reference_total": 75,
        "features": "raw",
        "feature_dim": 784,
        "resize": "none",
    }
    again = run.evaluate(["kid"])  # mtgan eval records the same
    assert again["protocol"] == written["protocol"]
    assert json.loads((run.path / "eval.json").read_text())["protocol"] == written["protocol"]


def test_each_reference_is_its_own_real_set(tiny):
    trainer = Trainer(load_config("pertask", [*tiny, *RAW, *HELDOUT]))
    data = trainer.data

    def context(reference: str) -> EvalContext:
        config = EvalConfig.model_validate(
            {**trainer.config.eval.model_dump(), "reference": reference}
        )
        return EvalContext(data, config, trainer.generate, 8, [0, 1, 2], extractor=projection(8))

    train, held, both = context("train"), context("heldout"), context("all")
    assert [train.reference_size(k) for k in range(3)] == [40] * 3
    assert [held.reference_size(k) for k in range(3)] == [25] * 3
    assert [both.reference_size(k) for k in range(3)] == [65] * 3
    assert torch.equal(train.real(1), data.to_display(data.task(1)))
    assert torch.equal(held.real(1), data.to_display(data.heldout.task(1)))
    assert torch.equal(both.real(1), torch.cat([train.real(1), held.real(1)]))
    assert (held.real_labels(2) == 7).all()
    assert evaluate(held, ["fid"])["fid"] != evaluate(train, ["fid"])["fid"]


def test_heldout_reference_without_a_heldout_split_is_a_config_error(tiny):
    # when the config loads, before any training
    with pytest.raises(ConfigError, match=r"eval.reference=heldout.*data.heldout=0"):
        load_config("pertask", [*tiny, *RAW, "eval.reference=heldout"])


def _noise_images(z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """A stand-in generator: uniform noise images (NG, n, 1, 28, 28) in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(*z.shape[:2], 1, 28, 28, generator=gen)


def test_a_reference_smaller_than_the_features_warns_and_names_kid(tiny):
    data = build_tasks(load_config("pertask", tiny).data, 0)  # 40 rows per task, 784-d pixels
    ctx = EvalContext(data, EvalConfig(n=50), _noise_images, 8, [0, 1, 2], extractor=projection(64))
    with pytest.warns(UserWarning, match=r"rank-deficient.*KID") as caught:
        evaluate(ctx, ["fid"])
    assert "64-d" in str(caught[0].message) and "task 0: 40" in str(caught[0].message)


def test_a_large_enough_reference_does_not_warn():
    config = load_config("baseline", ["data.name=ring8", "data.n_points=400"])
    data = build_tasks(config.data, 0)

    def points(z, labels=None):
        return torch.randn(*z.shape[:2], 2, generator=torch.Generator().manual_seed(0))

    ctx = EvalContext(data, EvalConfig(n=200), points, 2, [0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(ctx, ["fid"])
    assert ctx.protocol()["feature_dim"] == 2


def test_a_per_class_reference_of_a_few_hundred_images_warns(tiny):
    config = load_config("pertask", [*tiny, "data.tasks=single", "data.limit=300"])
    data = build_tasks(config.data, 0)  # about 30 images per class
    config = EvalConfig(n=300)
    ctx = EvalContext(data, config, _noise_images, 8, [0], num_classes=10, extractor=projection(8))
    with pytest.warns(UserWarning, match=r"per-class FID .*< 500.*KID"):
        evaluate(ctx, ["fid"])
