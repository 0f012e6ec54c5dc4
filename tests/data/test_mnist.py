import torch

from mtgan.data.mnist import load_mnist5k


def test_bundled_mnist_has_5000_digits_500_per_class_in_unit_range():
    x, y = load_mnist5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (5000,) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((10,), 500))
    assert x.min() == 0.0 and x.max() == 1.0
    # Digits are mostly dark background with some ink.
    assert 0.05 < x.mean() < 0.25
