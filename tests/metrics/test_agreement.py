import pytest
import torch

from mtgan.data.domains import DOMAINS
from mtgan.data.mnist import load_mnist5k
from mtgan.metrics.agreement import pixel_agreement


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_mnist5k()[0][:1000]


@pytest.mark.parametrize("transform", ["edges", "negative"])
def test_exact_transform_of_real_digits_agrees_fully(digits, transform):
    assert pixel_agreement(digits, DOMAINS[transform](digits), transform) == 1.0


def test_wrong_transform_disagrees_on_real_digits(digits):
    # binarised x and binarised 1 - x differ wherever x != 0.5: nearly every pixel.
    assert pixel_agreement(digits, DOMAINS["negative"](digits), "identity") < 0.01


def test_independent_random_binary_images_agree_at_chance():
    gen = torch.Generator().manual_seed(0)
    a = (torch.rand(1000, 1, 28, 28, generator=gen) > 0.5).float()
    b = (torch.rand(1000, 1, 28, 28, generator=gen) > 0.5).float()
    # 784,000 pixels: the std of the mean is 0.0006.
    assert pixel_agreement(a, b, "identity") == pytest.approx(0.5, abs=0.005)


def test_unknown_transform_is_rejected(digits):
    with pytest.raises(ValueError, match="unknown transform"):
        pixel_agreement(digits, digits, "blur")
