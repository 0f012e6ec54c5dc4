import json
import socket
import warnings

import pytest
import torch
from torch import Tensor, nn

from mtgan.data.mnist import load_mnist5k
from mtgan.errors import MtganError
from mtgan.metrics import digits, features
from mtgan.metrics.extractors import get_extractor
from mtgan.metrics.features import (
    DigitClassifier,
    DigitFeatures,
    FeatureError,
    ModuleFeatures,
    RawFeatures,
    digit_classifier,
)
from mtgan.metrics.inception import ENV, InceptionFeatures


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Nothing may touch the real ~/.cache, and each test starts without memoised classifiers.
    monkeypatch.setenv("MTGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(ENV, raising=False)
    digits._MEMO.clear()
    yield
    digits._MEMO.clear()


@pytest.fixture(scope="module")
def small_digits() -> tuple[Tensor, Tensor]:
    x, y = load_mnist5k()
    return x[::25].clone(), y[::25].clone()  # 20 of each digit (the data is sorted by class)


def _count_training(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = digits.train_digit_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(digits, "train_digit_classifier", counting)
    return calls


def test_classifier_is_cached_on_disk_and_in_memory(small_digits, monkeypatch, tmp_path):
    calls = _count_training(monkeypatch)
    first = digit_classifier(data=small_digits, epochs=1, verbose=False)
    assert calls == [1] and not first.training
    assert 0.0 <= first.held_out_accuracy <= 1.0
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    info = json.loads((tmp_path / "cache" / files[0]).read_text())
    assert info["version"] == digits.CLASSIFIER_VERSION
    assert info["held_out_accuracy"] == first.held_out_accuracy
    assert files[0][len("digits-") : -len(".json")] == info["key"][:16]

    assert digit_classifier(data=small_digits, epochs=1, verbose=False) is first  # memo
    digits._MEMO.clear()
    again = digit_classifier(data=small_digits, epochs=1, verbose=False)  # from disk
    assert calls == [1] and again is not first
    assert again.held_out_accuracy == first.held_out_accuracy
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_changed_data_or_options_retrain(small_digits, monkeypatch):
    calls = _count_training(monkeypatch)
    x, y = small_digits
    digit_classifier(data=(x, y), epochs=1, verbose=False)
    x2 = x.clone()
    x2[0, 0, 0, 0] = 0.5
    digit_classifier(data=(x2, y), epochs=1, verbose=False)
    digit_classifier(data=(x, y), epochs=1, seed=1, verbose=False)
    assert len(calls) == 3
    # Spelling out a default names the same model.
    digit_classifier(data=(x, y), epochs=1, seed=0, verbose=False)
    assert len(calls) == 3


def test_training_is_deterministic_and_leaves_global_rng_alone(small_digits):
    state = torch.get_rng_state()
    a, acc_a = digits.train_digit_classifier(*small_digits, epochs=1, verbose=False)
    assert torch.equal(torch.get_rng_state(), state)
    b, acc_b = digits.train_digit_classifier(*small_digits, epochs=1, verbose=False)
    assert acc_a == acc_b
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_corrupt_cache_entry_is_retrained(small_digits, monkeypatch, tmp_path):
    calls = _count_training(monkeypatch)
    digit_classifier(data=small_digits, epochs=1, verbose=False)
    (weights,) = (tmp_path / "cache").glob("*.safetensors")
    weights.write_bytes(b"not safetensors")
    digits._MEMO.clear()
    with pytest.warns(UserWarning, match="retraining"):
        digit_classifier(data=small_digits, epochs=1, verbose=False)
    assert len(calls) == 2


def test_bad_classifier_inputs_are_user_errors(small_digits):
    x, y = small_digits
    with pytest.raises(FeatureError, match=r"\(N, 1, 28, 28\)"):
        digit_classifier(data=(x[:, :, :20], y), verbose=False)
    with pytest.raises(FeatureError, match="0..9"):
        digit_classifier(data=(x, y + 5), verbose=False)
    with pytest.raises(FeatureError, match="choose from"):
        digit_classifier(data=(x, y), verbose=False, epoch=3)
    with pytest.raises(FeatureError, match="too few"):
        digit_classifier(data=(x[:20], y[:20]), verbose=False)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    assert features.cache_dir(tmp_path / "x") == tmp_path / "x"
    assert features.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("MTGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert features.cache_dir() == tmp_path / "xdg" / "mtgan"


@pytest.mark.slow
def test_full_classifier_reaches_97_percent_held_out(capsys):
    model = digit_classifier()
    assert model.held_out_accuracy >= 0.97
    assert "held-out accuracy" in capsys.readouterr().err


def test_digit_features_shapes_channels_and_sizes():
    extractor = DigitFeatures(DigitClassifier().eval(), batch_size=7)
    assert extractor.name.startswith("digits-")
    x = torch.rand(20, 1, 28, 28)
    out = extractor(x)
    assert out.shape == (20, DigitClassifier.feature_dim) and out.dtype == torch.float32
    # Three equal channels give the same features as one.
    assert torch.allclose(extractor(x.expand(-1, 3, -1, -1)), out, atol=1e-6)
    with pytest.warns(UserWarning, match="resizing"):
        assert extractor(torch.rand(5, 1, 32, 32)).shape == (5, DigitClassifier.feature_dim)
    with pytest.raises(FeatureError, match="features=raw"):
        extractor(torch.rand(5, 2))


def test_digit_features_name_follows_the_weights():
    torch.manual_seed(0)
    a, b = DigitClassifier(), DigitClassifier()
    assert DigitFeatures(a).name == DigitFeatures(a).name != DigitFeatures(b).name


def test_raw_features_flatten():
    points = torch.randn(9, 2)
    assert torch.equal(RawFeatures(batch_size=4)(points), points)
    assert RawFeatures()(torch.rand(3, 1, 4, 4)).shape == (3, 16)
    with pytest.raises(FeatureError, match="non-empty"):
        RawFeatures()(torch.zeros(0, 2))


def test_module_features_use_the_given_module():
    torch.manual_seed(0)
    linear = nn.Linear(2, 5)
    extractor = ModuleFeatures(linear, name="lin-v1", batch_size=3)
    x = torch.randn(10, 2)
    assert extractor.name == "lin-v1"
    assert torch.allclose(extractor(x), linear(x).detach())
    with pytest.raises(FeatureError, match="letters"):
        ModuleFeatures(linear, name="a/b")


def test_get_extractor_names_and_options():
    assert isinstance(get_extractor("raw"), RawFeatures)
    assert isinstance(get_extractor("digits", classifier=DigitClassifier()), DigitFeatures)
    with pytest.raises(FeatureError, match="digits.*inception.*raw"):
        get_extractor("vgg")
    with pytest.raises(FeatureError, match="weights_path"):
        get_extractor("inception", weights=1)


# ------------------------------------------------------------------------------------ Inception


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_inception_without_weights_says_how_to_get_them(no_network):
    for make in (InceptionFeatures, lambda: get_extractor("inception")):
        with pytest.raises(FeatureError, match=ENV) as info:
            make()
        assert isinstance(info.value, MtganError)
        assert "inception-2015-12-05.pt" in str(info.value)
        assert "eval.inception_weights" in str(info.value)


def test_inception_missing_or_corrupt_file_names_it(no_network, tmp_path, monkeypatch):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FeatureError, match="nope.pt"):
        InceptionFeatures(missing)
    monkeypatch.setenv(ENV, str(missing))
    with pytest.raises(FeatureError, match="nope.pt"):
        InceptionFeatures()
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(FeatureError, match="corrupt.pt"):
        InceptionFeatures(corrupt)


class _StandIn(nn.Module):
    """Records what the FID Inception would receive; returns (N, 2048) like it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen_shape", torch.zeros(4, dtype=torch.long))
        self.register_buffer("seen_range", torch.zeros(2))

    def forward(self, img: Tensor, return_features: bool = False) -> Tensor:
        assert return_features
        self.seen_shape.copy_(torch.tensor(img.shape))
        self.seen_range.copy_(torch.stack([img.min(), img.max()]))
        return img.mean(dim=(2, 3)).repeat(1, 683)[:, :2048]


def test_inception_torchscript_plumbing(no_network, tmp_path, monkeypatch):
    path = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        torch.jit.save(torch.jit.script(_StandIn()), str(path))
    monkeypatch.setenv(ENV, str(path))
    extractor = get_extractor("inception")
    assert extractor.backend == "torchscript" and extractor.name.startswith("inception-")
    x = torch.rand(5, 1, 28, 28)
    x[0, :, :, :14], x[0, :, :, 14:] = 1.0, 0.0
    out = extractor(x)
    assert out.shape == (5, 2048)
    assert extractor.model.seen_shape.tolist() == [5, 3, 299, 299]
    assert extractor.model.seen_range.tolist() == [0.0, 255.0]
    assert extractor.preprocess(torch.rand(2, 3, 40, 40)).shape == (2, 3, 299, 299)
    native = extractor.preprocess(torch.rand(2, 3, 299, 299))
    assert torch.equal(native, native.round())  # quantised to 8-bit levels, as a PNG would be
    with pytest.raises(FeatureError, match="images"):
        extractor(torch.rand(3, 2))
