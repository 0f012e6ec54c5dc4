"""Evaluation wired to runs: during training, `Run.evaluate`, eval.json, per-task keys, caching."""

from __future__ import annotations

import json

import pytest
import torch

from mtgan import api
from mtgan.cli import main
from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.metrics.cache import cache_dir
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.training import Trainer

RAW = ["eval.features=raw", "eval.n=64", "eval.kid_subset_size=32", "eval.kid_subsets=5"]


def test_eval_during_training_logs_per_task_and_mean_and_writes_eval_json(tmp_path, tiny):
    overrides = [*tiny, *RAW, "eval.metrics=[fid,kid,prdc,stability]", "eval.every=3"]
    run = api.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    evals = [r for r in run.metrics() if "eval/fid" in r]
    assert [r["step"] for r in evals] == [3, 6]
    last = evals[-1]
    for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert {f"eval/{key}/task{k}" for k in range(3)} <= last.keys()
        assert last[f"eval/{key}"] == pytest.approx(
            sum(last[f"eval/{key}/task{k}"] for k in range(3)) / 3
        )
    assert last["eval/fid"] > 0 and "eval/fid_pooled" in last
    assert last["eval/nonfinite"] == 0
    written = json.loads((run.path / "eval.json").read_text())
    assert written["step"] == 6 and written["features"] == "raw" and written["ema"] is True
    assert written["fid"] == pytest.approx(last["eval/fid"])


def test_run_evaluate_matches_the_trainer_and_caches_real_features(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("MTGAN_CACHE", str(tmp_path / "cache"))
    run = api.train("pertask", [*tiny, *RAW], out=tmp_path / "run", quiet=True)
    result = run.evaluate(["fid", "prdc"])
    assert len(list(cache_dir().glob("real-raw-*"))) == 3  # real features, one file per task
    again = run.evaluate(["fid", "prdc"])
    assert again["fid"] == result["fid"]
    trainer = Trainer(run.config)
    trainer.restore(run.dir)
    direct = evaluate(trainer.eval_context(), ["fid"])
    assert direct["fid"] == pytest.approx(result["fid"], rel=1e-9)


def test_modes_metric_on_a_2d_mixture(tmp_path):
    overrides = [
        "data.name=ring8",
        "data.n_points=1000",
        "model.z_dim=2",
        "model.g_hidden=[16]",
        "model.d_hidden=[16]",
        "train.steps=4",
        "train.progress=false",
        "train.loggers=[jsonl]",
        "eval.n=2500",
    ]
    run = api.train("baseline", overrides, out=tmp_path / "run", quiet=True)
    result = run.evaluate(["modes"])
    assert 0 <= result["modes"] <= 8 and 0 <= result["hq"] <= 100
    assert result["modes/task0"] == result["modes"]


def test_agreement_pairs_a_task_with_its_derived_domain(tmp_path, tiny):
    overrides = [*tiny, *RAW, "data.tasks=[[0,1]]", "data.domains=[identity,negative]"]
    run = api.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    result = run.evaluate(["agreement"])
    assert set(result) >= {"agreement", "agreement/task0-task1"}
    assert 0 <= result["agreement"] <= 1


def test_metrics_that_do_not_fit_the_data_say_why(tmp_path, tiny):
    run = api.train("pertask", [*tiny, *RAW], out=tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="ring8"):
        run.evaluate(["modes"])
    with pytest.raises(ConfigError, match="domains"):
        run.evaluate(["agreement"])
    with pytest.raises(ConfigError, match="choose from"):
        run.evaluate(["fidd"])
    with pytest.raises(ConfigError, match="eval.n"):
        run.evaluate(["fid"], n=0)


def test_context_refuses_generators_that_do_not_match_tasks(tiny):
    trainer = Trainer(load_config("pertask", tiny))
    with pytest.raises(ConfigError, match="a generator for each of the 3 tasks"):
        EvalContext(trainer.data, trainer.config.eval, trainer.generate, 8, [0, 1, 1])


def test_cli_eval_writes_eval_json(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    main(["train", "pertask", *tiny, *RAW, "--out", str(out), "--quiet"])
    assert main(["eval", str(out), "--metrics", "fid,stability", "--n", "50"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 50 and "fid" in printed and "fid/task0" not in printed
    assert "fid/task0" in json.loads((out / "eval.json").read_text())
    assert main(["eval", str(out), "--checkpoint", "3", "--metrics", "fid"]) == 0
    assert json.loads((out / "eval-3.json").read_text())["checkpoint"] == "step-0000003"
    assert json.loads((out / "eval.json").read_text())["checkpoint"] == "step-0000006"
    assert main(["eval", str(out), "--checkpoint", "4"]) == 2
    assert "step-0000003" in capsys.readouterr().err


def test_cli_eval_live_scores_the_trained_generators_and_keeps_eval_json(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    main(["train", "pertask", *tiny, *RAW, "train.ema=0.9", "--out", str(out), "--quiet"])
    assert main(["eval", str(out), "--metrics", "fid", "--n", "50"]) == 0
    ema = (out / "eval.json").read_text()
    assert main(["eval", str(out), "--metrics", "fid", "--n", "50", "--live"]) == 0
    live = json.loads((out / "eval-live.json").read_text())
    assert (out / "eval.json").read_text() == ema  # the EMA's evaluation is kept
    assert live["ema"] is False and json.loads(ema)["ema"] is True
    assert live["fid"] != json.loads(ema)["fid"]  # other generators, other samples
    assert main(["eval", str(out), "--checkpoint", "3", "--metrics", "fid", "--live"]) == 0
    assert json.loads((out / "eval-live-3.json").read_text())["checkpoint"] == "step-0000003"


@pytest.mark.slow
def test_class_accuracy_with_the_digit_classifier(tmp_path, tiny):
    """Trains the real digit classifier once (about 15 s): accuracy per class task."""
    run = api.train("pertask", [*tiny, "eval.n=100"], out=tmp_path / "run", quiet=True)
    result = run.evaluate(["accuracy", "fid"])
    assert result["features"] == "digits"
    assert {"accuracy/task0", "accuracy/task1", "accuracy/task2"} <= result.keys()
    assert 0 <= result["accuracy"] <= 1
    # The classifier's head runs on the FID features (one forward pass for both metrics); the
    # logits must be what the whole classifier gives on the samples themselves.
    from mtgan.metrics import digit_classifier

    trainer = Trainer(run.config)
    trainer.restore(run.dir)
    ctx = trainer.eval_context()
    classifier = digit_classifier()
    for k in range(3):
        with torch.no_grad():
            direct = classifier(ctx.samples(k))
        shared = ctx.class_logits(k, classifier)
        assert k in ctx._fake_features  # computed once, kept for FID
        torch.testing.assert_close(shared, direct, rtol=1e-4, atol=1e-4)
    assert evaluate(ctx, ["accuracy"])["accuracy"] == pytest.approx(result["accuracy"])


def test_a_user_module_supplies_the_features(tmp_path, tiny):
    from torch import nn

    from mtgan.metrics import ModuleFeatures

    run = api.train("pertask", [*tiny, *RAW], out=tmp_path / "run", quiet=True)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(784, 8))
    result = run.evaluate(["fid"], extractor=ModuleFeatures(module, "tiny-linear"))
    assert result["features"] == "tiny-linear" and result["fid"] >= 0


def test_per_class_fid_of_a_conditional_model_checks_the_class_it_was_asked_for(tiny):
    """An oracle that returns real images of the class asked for scores near zero per class;
    one that returns the next class's images scores far worse, though pooled FID barely moves."""
    overrides = [*tiny, *RAW, "data.tasks=single", "data.limit=300", "model.conditional=true"]
    trainer = Trainer(load_config("acgan", overrides))
    data = trainer.data
    images = data.to_display(data.task(0)).cpu()
    labels = data.task_labels(0).cpu()
    classes = labels.unique().tolist()
    by_class = {c: images[labels == c] for c in classes}

    def oracle(shift: int):
        def generate(z, labels):
            n = len(classes)
            wanted = [classes[(classes.index(c) + shift) % n] for c in labels[0].tolist()]
            picks = [by_class[c][i % len(by_class[c])] for i, c in enumerate(wanted)]
            return torch.stack(picks).unsqueeze(0)

        return generate

    from torch import nn

    from mtgan.metrics import ModuleFeatures

    torch.manual_seed(0)  # a random projection to 16 features: fast, and tells digits apart
    features = ModuleFeatures(nn.Sequential(nn.Flatten(), nn.Linear(784, 16)), "projection")
    scores = {}
    for shift in (0, 1):
        ctx = EvalContext(data, trainer.config.eval, oracle(shift), 8, [0], num_classes=10,
                          extractor=features)  # fmt: skip
        scores[shift] = evaluate(ctx, ["fid"])
    right, wrong = scores[0], scores[1]
    assert {f"fid_per_class/class{i}" for i in range(len(classes))} <= right.keys()
    assert right["fid_per_class"] < 0.5 * wrong["fid_per_class"]
    assert right["fid_pooled"] == right["fid"]  # one task: its own pool
    assert wrong["fid"] == pytest.approx(right["fid"], rel=0.3)  # same images, other classes


def test_a_run_stopped_before_its_final_evaluation_gets_it_on_resume(tmp_path, tiny):
    overrides = [*tiny, *RAW, "eval.metrics=[fid]"]
    run = api.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    first = json.loads((run.path / "eval.json").read_text())
    (run.path / "eval.json").unlink()  # as if killed after the last checkpoint
    api.train(resume=run.path, quiet=True)
    again = json.loads((run.path / "eval.json").read_text())
    assert again["step"] == 6 and again["fid"] == pytest.approx(first["fid"], rel=1e-9)
    api.train(resume=run.path, quiet=True)  # complete: nothing evaluated twice
    evals = [r for r in api.Run(run.path).metrics() if "eval/fid" in r]
    assert len(evals) == 2
