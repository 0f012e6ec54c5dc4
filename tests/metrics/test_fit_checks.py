"""Every metric named in eval.metrics is checked against the data before step 1 (and before an
evaluation generates anything), and `eval.features=auto` picks a feature space from the data,
never raw pixels by default."""

from __future__ import annotations

import pytest
import torch
from own_images import write_npz

from mtgan import api
from mtgan.cli import main
from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.errors import ConfigError
from mtgan.metrics.extractors import choose_features
from mtgan.metrics.registry import check_fits

FEATURES_HINT = r"eval\.inception_weights=PATH.*eval\.features=raw"


@pytest.fixture
def unlabelled_npz(tmp_path, shapes):
    return write_npz(tmp_path / "unlabelled.npz", shapes[0], None)


@pytest.fixture
def one_class_npz(tmp_path, shapes):
    return write_npz(tmp_path / "one-class.npz", shapes[0], torch.zeros_like(shapes[1]))


def _own(tiny, npz, *extra):
    return [*tiny, f"data.path={npz}", "data.tasks=single", *extra]


@pytest.mark.parametrize(
    "data, extra, match",
    [
        ("shapes_npz", ["eval.metrics=[accuracy]"],
         r"eval\.metrics: `accuracy` needs tasks made of classes \(data\.tasks=classes\) or a "
         r"conditional model.*; data\.path=\S+shapes\.npz is 3×16×16 images with 3 classes in "
         r"1 task$"),
        ("unlabelled_npz", ["eval.metrics=[accuracy]"],
         r"`accuracy` needs labelled images.*is 3×16×16 images with no labels"),
        ("unlabelled_npz", ["eval.metrics=[fid,kid,stability]"],
         r"`fid`, `kid` need a feature space for the images; \S+ is 3×16×16 images with no "
         rf"labels in 1 task: .*two classes or more.*{FEATURES_HINT}"),
        ("one_class_npz", ["eval.metrics=[prdc]"],
         rf"`prdc` needs a feature space.* with 1 class in 1 task: .*{FEATURES_HINT}"),
        ("one_class_npz", ["eval.metrics=[kid]", "train.until.metric=kid", "eval.every=2"],
         r"`kid` needs a feature space"),
        ("shapes_npz", ["eval.metrics=[modes]"], r"`modes` needs a bundled 2D mixture"),
        ("shapes_npz", ["eval.metrics=[agreement]"], r"`agreement` needs tasks in two domains"),
        ("shapes_npz", ["eval.metrics=[fid]", "eval.features=inception"],
         r"`fid` needs a feature space.*Inception"),
    ],
)  # fmt: skip
def test_an_unfit_metric_fails_before_the_run_directory_exists(
    request, tmp_path, tiny, data, extra, match
):
    npz = request.getfixturevalue(data)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=match) as caught:
        api.train("pertask", _own(tiny, npz, *extra), out=out, quiet=True)
    assert "\n" not in str(caught.value)
    assert not out.exists()


def test_the_command_line_says_it_in_one_line_before_training(tmp_path, tiny, shapes_npz, capsys):
    out = tmp_path / "run"
    args = ["train", "pertask", *_own(tiny, shapes_npz, "eval.metrics=[accuracy]")]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtgan: error: eval.metrics: `accuracy` needs") and err.count("\n") == 1
    assert not out.exists()


def test_mtgan_eval_refuses_an_unfit_metric_before_generating(
    tmp_path, tiny, shapes_npz, capsys, monkeypatch
):
    out = tmp_path / "run"
    api.train("pertask", _own(tiny, shapes_npz, "eval.metrics=[]"), out=out, quiet=True)

    def refuse(*args, **kwargs):
        raise AssertionError("generated samples for a metric that cannot run")

    monkeypatch.setattr(api.Run, "generate", refuse)
    assert main(["eval", str(out), "--metrics", "accuracy"]) == 2
    assert "`accuracy` needs tasks made of classes" in capsys.readouterr().err
    assert main(["eval", str(out), "--metrics", "modes,fid"]) == 2
    assert "`modes` needs" in capsys.readouterr().err


def test_raw_pixels_run_when_asked_for(tmp_path, tiny, unlabelled_npz):
    extra = ["eval.metrics=[fid]", "eval.features=raw", "eval.n=20"]
    run = api.train("pertask", _own(tiny, unlabelled_npz, *extra), out=tmp_path / "r", quiet=True)
    assert run.evaluate(write=False)["features"] == "raw"


def _choice(overrides):
    config = load_config("pertask", ["data.tasks=single", *overrides])
    return choose_features(config.eval, build_tasks(config.data, config.seed))


def test_auto_features_follow_the_data(tmp_path, shapes_npz, unlabelled_npz, one_class_npz):
    weights = tmp_path / "inception.pt"
    weights.write_bytes(b"checked when loaded, not here")
    assert _choice(["data.name=ring8", "data.n_points=200"]) == ("raw", None)
    assert _choice(["data.limit=20"]) == ("digits", None)  # 1×28×28
    assert _choice([f"data.path={shapes_npz}"]) == ("classifier", None)
    assert _choice([f"data.path={unlabelled_npz}", f"eval.inception_weights={weights}"]) == (
        "inception",
        None,
    )
    for npz in (unlabelled_npz, one_class_npz):
        name, why = _choice([f"data.path={npz}"])
        assert name is None and "two classes or more" in why and "eval.features=raw" in why
    assert _choice([f"data.path={unlabelled_npz}", "eval.features=raw"]) == ("raw", None)


def test_check_fits_skips_the_feature_space_for_a_users_own_extractor(unlabelled_npz):
    overrides = [f"data.path={unlabelled_npz}", "data.tasks=single", "eval.metrics=[fid]"]
    config = load_config("pertask", overrides)
    data = build_tasks(config.data, config.seed)
    with pytest.raises(ConfigError, match="`fid` needs a feature space"):
        check_fits(config, data)
    check_fits(config, data, own_features=True)
    with pytest.raises(ConfigError, match="choose from"):
        check_fits(config, data, ["fidd"])
