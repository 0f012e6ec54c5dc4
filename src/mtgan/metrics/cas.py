"""Classification accuracy score (Ravuri & Vinyals, 2019): train a classifier on generated
images, labelled by the class each was made for, and test it on real images it never saw.

A generator whose classes look right but lack the real data's variety (mode dropping) trains a
classifier that fails on real images, which sample-by-sample scores (accuracy, precision)
miss. The recipe is the own-image classifier's (`mtgan.metrics.classifier`: the same small CNN
at 32×32 px, Adam with a one-cycle rate, ±2 px shifts, seeded, the global RNG untouched),
without its "none of them" class. The same recipe trained on as many real training rows gives
the score's ceiling (`cas_real`), cached on disk like the other classifiers: it depends on the
data and the image count only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtgan.metrics.classifier import (
    ImageClassifier,
    Kind,
    cache_key,
    cached_classifier,
    epochs_for,
    fit_images,
    train_classifier,
)
from mtgan.metrics.data_classifier import SIZE

# Generated images the classifier trains on, at most, over all scored tasks (an equal share
# each): enough for a LeNet-sized CNN to learn digits, and a few seconds per epoch on a CPU.
CAS_IMAGES = 5000
EPOCHS = 5  # passes over them, or more for small sets (at least MIN_STEPS updates)
MIN_STEPS = 200
BATCH_SIZE = 64
LR = 3e-3
VERSION = 1  # bump whenever the recipe changes: it keys the cache of the real-data classifier
GENERATED = Kind("cas", VERSION, "CAS classifier", "generated images", channels_last=True)
REAL = Kind("cas-real", VERSION, "CAS real-data classifier", "training images",
            channels_last=True)  # fmt: skip


def train_cas_classifier(
    x: Tensor, y: Tensor, num_classes: int, seed: int = 0, kind: Kind = GENERATED
) -> ImageClassifier:
    """The recipe on images x (N, 1 or 3, H, W) in [0, 1] with labels y (N,) in
    0..num_classes−1; the model in eval mode (`held_out_accuracy`: on 15 % of x kept aside)."""
    x = fit_images(x.detach().cpu().float(), x.shape[1], SIZE).contiguous()
    y = y.detach().cpu().long()

    def build() -> ImageClassifier:
        return ImageClassifier(x.shape[1], SIZE, num_classes)

    epochs = epochs_for(y, num_classes, EPOCHS, BATCH_SIZE, MIN_STEPS)
    model, _ = train_classifier(kind, build, x, y, num_classes, seed=seed, epochs=epochs,
                                batch_size=BATCH_SIZE, lr=LR, verbose=False)  # fmt: skip
    return model


def real_cas_classifier(x: Tensor, y: Tensor, num_classes: int, seed: int = 0) -> ImageClassifier:
    """`train_cas_classifier` on real rows, trained once and cached by their content."""
    fitted = fit_images(x.detach().cpu().float(), x.shape[1], SIZE).contiguous()
    y = y.detach().cpu().long()
    options = {"seed": seed, "classes": num_classes, "epochs": EPOCHS, "min_steps": MIN_STEPS,
               "batch_size": BATCH_SIZE, "lr": LR}  # fmt: skip
    key = cache_key(REAL, options, fitted, y)

    def build() -> ImageClassifier:
        return ImageClassifier(fitted.shape[1], SIZE, num_classes)

    def train() -> tuple[ImageClassifier, float]:
        model = train_cas_classifier(fitted, y, num_classes, seed, REAL)
        return model, model.held_out_accuracy

    info = {"train_options": options, "num_images": len(y)}
    return cached_classifier(REAL, key, build, train, info, verbose=False)


def predict(model: ImageClassifier, x: Tensor) -> Tensor:
    """The class `model` reads in each image x (N, 1 or 3, H, W) in [0, 1], (N,)."""
    with torch.no_grad():
        return torch.cat([model(model.fit_input(b)).argmax(1) for b in x.float().split(500)])
