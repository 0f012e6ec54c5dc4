"""The classifier of a user's own labelled images: trained once, cached, a feature space that
ranks generators, and class accuracy on the user's data."""

from __future__ import annotations

import json

import pytest
import torch
from own_images import make_shapes

from mtgan.config import load_config
from mtgan.data import build_tasks
from mtgan.errors import FeatureError
from mtgan.metrics import classifier as shared
from mtgan.metrics import data_classifier
from mtgan.metrics.data_classifier import classifier_for, image_classifier
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.metrics.features import ClassifierFeatures
from mtgan.metrics.fid import fid


def _count_training(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = data_classifier.train_image_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data_classifier, "train_image_classifier", counting)
    return calls


@pytest.fixture
def classifier(shapes):
    return image_classifier(*shapes, verbose=False)


def test_trains_once_to_high_held_out_accuracy_and_is_cached(shapes, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTGAN_CACHE", str(tmp_path / "cache"))
    calls = _count_training(monkeypatch)
    first = image_classifier(*shapes)
    assert calls == [1] and not first.training
    assert first.held_out_accuracy >= 0.9  # 18 held-out images of three easy classes
    assert (first.channels, first.size, first.num_classes) == (3, 32, 4)  # 3 and 'none'
    (meta,) = (tmp_path / "cache").glob("classifier-*.json")
    info = json.loads(meta.read_text())
    assert info["version"] == data_classifier.CLASSIFIER_VERSION
    assert info["held_out_accuracy"] == first.held_out_accuracy and info["num_images"] == 120

    assert image_classifier(*shapes, verbose=False) is first  # memo
    shared._MEMO.clear()
    again = image_classifier(*shapes, verbose=False)  # from the cache file
    assert calls == [1] and again is not first
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    err = capsys.readouterr().err  # its held-out accuracy, once: when it trained
    assert err.count("image classifier: held-out accuracy") == 1, err


def test_its_features_rank_a_good_generator_above_bad_ones(classifier):
    """Held-out images of the reference's class score far better on FID than another class's
    images or noise; noise is classified as none of the classes."""
    real, labels = make_shapes(60, seed=1)  # images the classifier never saw
    reference, good = real[labels == 0][:30], real[labels == 0][30:]
    wrong_class = real[labels == 1][:30]
    noise = torch.rand_like(good)
    features = ClassifierFeatures(classifier)
    assert features.name.startswith("classifier-")
    ref = features(reference)
    scores = {name: fid(ref, features(x)) for name, x in
              [("good", good), ("wrong class", wrong_class), ("noise", noise)]}  # fmt: skip
    assert scores["good"] < 0.5 * min(scores["wrong class"], scores["noise"]), scores
    with torch.no_grad():  # noise is none of the classes: its own class, 3
        none = classifier(classifier.fit_input(noise)).argmax(1) == 3
        real_none = classifier(classifier.fit_input(real)).argmax(1) == 3
    assert none.float().mean() >= 0.9 and real_none.float().mean() <= 0.1


def test_bad_inputs_are_user_errors(shapes):
    x, y = shapes
    with pytest.raises(FeatureError, match="2 classes or more"):
        image_classifier(x, torch.zeros_like(y), verbose=False)
    with pytest.raises(FeatureError, match="1 or 3"):
        image_classifier(x[:, :2], y, verbose=False)
    with pytest.raises(FeatureError, match="≥ 8 px"):
        image_classifier(x[:, :, :6, :6], y, verbose=False)
    with pytest.raises(FeatureError, match="choose from"):
        image_classifier(x, y, epoch=3, verbose=False)
    with pytest.raises(FeatureError, match="too few"):
        image_classifier(x[::4], y[::4], verbose=False)  # 10 per class: 2 held out of each


def _own_data(npz, tasks="classes", extra=()):
    overrides = [f"data.path={npz}", f"data.tasks={tasks}", "eval.n=30", *extra]
    return load_config("pertask", overrides)


def test_accuracy_on_a_users_labelled_images(shapes_npz, shapes):
    """An oracle generator that returns real images of each task's class scores near 1; one
    that returns the next class's images scores near 0."""
    config = _own_data(shapes_npz)
    data = build_tasks(config.data, config.seed)
    x, y = make_shapes(10, seed=2)

    def oracle(shift):
        def generate(z):  # (3, n, z_dim) → (3, n, 3, 16, 16): task k gets class k + shift
            n = z.shape[1]
            return torch.stack([x[y == (k + shift) % 3][torch.arange(n) % 10] for k in range(3)])

        return generate

    right = EvalContext(data, config.eval, oracle(0), 4, [0, 1, 2])
    assert right.features_name == "classifier"  # labelled 3×16×16 images: their own classifier
    scores = evaluate(right, ["accuracy", "fid"])
    assert scores["accuracy"] >= 0.9 and {f"accuracy/task{k}" for k in range(3)} <= scores.keys()
    assert right.protocol()["features"] == ClassifierFeatures.name_for(classifier_for(data))
    assert right.protocol()["resize"].startswith("bilinear to 32x32")
    wrong = EvalContext(data, config.eval, oracle(1), 4, [0, 1, 2])
    assert evaluate(wrong, ["accuracy"])["accuracy"] <= 0.1
    # FID's features and accuracy's logits come from one forward pass of the same classifier
    classifier = right.classifier()
    with torch.no_grad():
        direct = classifier(classifier.fit_input(right.samples(0)))
    torch.testing.assert_close(right.class_logits(0, classifier), direct, rtol=1e-4, atol=1e-4)
