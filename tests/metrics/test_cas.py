"""`cas`: a classifier trained on generated images, tested on held-out real ones."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor

from mtgan import api
from mtgan.config import EvalConfig, load_config
from mtgan.data import TaskSet, build_tasks
from mtgan.errors import ConfigError
from mtgan.metrics import cas
from mtgan.metrics.evaluate import EvalContext, evaluate
from mtgan.metrics.registry import check_fits, default_metrics, direction

CLASSES, SIDE, N = 3, 16, 90


@pytest.fixture(autouse=True)
def _few_steps(monkeypatch):
    monkeypatch.setattr(cas, "MIN_STEPS", 60)  # the bars are learnt in a few dozen updates


def bars(per_class: int, seed: int) -> tuple[Tensor, Tensor]:
    """Images (3·per_class, 1, 16, 16) in [0, 1]: class c is a bright bar in the c-th third of
    the rows, of random length and position, on faint noise; labels (N,)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(CLASSES * per_class, 1, SIDE, SIDE, generator=gen) * 0.2
    y = torch.arange(CLASSES).repeat_interleave(per_class)
    for i, c in enumerate(y.tolist()):
        row, start, extra = (int(torch.randint(0, m, (1,), generator=gen)) for m in (4, 6, 3))
        x[i, 0, 5 * c + row : 5 * c + row + 2, start : start + 8 + extra] = 1
    return x, y


def taskset(x: Tensor, y: Tensor, tasks: list[list[int]]) -> TaskSet:
    """Tasks made of the given classes, stored at [-1, 1] as a TaskSet keeps images."""
    rows = [torch.nonzero(torch.isin(y, torch.tensor(t)), as_tuple=True)[0] for t in tasks]
    counts = torch.tensor([len(r) for r in rows])
    return TaskSet(
        x=x[torch.cat(rows)] * 2 - 1,
        offsets=torch.cumsum(counts, 0) - counts,
        counts=counts,
        names=[f"task{k}" for k in range(len(tasks))],
        kind="image",
        labels=y[torch.cat(rows)],
        domains=["identity"] * len(tasks),
    )


def bar_data(tasks: list[list[int]]) -> TaskSet:
    data = taskset(*bars(60, seed=0), tasks)
    data.heldout = taskset(*bars(30, seed=1), tasks)
    return data


def of_class(data: TaskSet, wanted: Tensor) -> Tensor:
    """Training images (display range) of each wanted class (...,), cycling through its rows."""
    out = torch.empty(*wanted.shape, 1, SIDE, SIDE)
    for c in range(CLASSES):
        where = wanted == c
        rows = data.to_display(data.x[data.labels == c])
        out[where] = rows[torch.arange(int(where.sum())) % len(rows)]
    return out


def per_task(data: TaskSet, shift: int = 0):
    """A generator per one-class task that returns training images of its class (+ shift)."""

    def generate(z: Tensor, labels: Tensor | None = None) -> Tensor:
        wanted = (torch.arange(z.shape[0]).view(-1, 1) + shift) % CLASSES
        return of_class(data, wanted.expand(z.shape[:2]))

    return generate


def context(data: TaskSet, generate, num_classes: int = 0) -> EvalContext:
    tasks = list(range(data.num_tasks))
    return EvalContext(data, EvalConfig(n=N), generate, 4, tasks, num_classes=num_classes)


ONE_CLASS_TASKS = [[0], [1], [2]]


def test_real_images_of_the_right_class_score_like_the_real_data_classifier():
    data = bar_data(ONE_CLASS_TASKS)
    result = evaluate(context(data, per_task(data)), ["cas"])
    assert result["cas_real"] >= 0.9
    assert result["cas"] >= 0.9 and abs(result["cas"] - result["cas_real"]) <= 0.1
    assert {f"{key}/task{k}" for key in ("cas", "cas_real") for k in range(3)} <= set(result)


def test_images_of_the_wrong_class_score_near_zero_and_the_global_rng_is_untouched():
    data = bar_data(ONE_CLASS_TASKS)
    state = torch.get_rng_state()
    result = evaluate(context(data, per_task(data, shift=1)), ["cas"])
    assert result["cas"] <= 0.1 and result["cas_real"] >= 0.9
    assert torch.equal(torch.get_rng_state(), state)


def test_the_value_is_the_direct_computation():
    """The classifier trained by hand on what each task's generator made, labelled by the task's
    class, then counted image by image on each task's held-out rows."""
    data = bar_data(ONE_CLASS_TASKS)
    generate = per_task(data)
    result = evaluate(context(data, generate), ["cas"])
    made = generate(torch.zeros(3, N, 4))
    model = cas.train_cas_classifier(made.flatten(0, 1), torch.arange(3).repeat_interleave(N), 3)
    for k in range(3):
        held = data.heldout.to_display(data.heldout.task(k))
        hits = 0
        with torch.no_grad():
            for image in held:
                hits += int(model(model.fit_input(image[None])).argmax()) == k
        assert result[f"cas/task{k}"] == pytest.approx(hits / len(held), abs=1e-12)
    assert result["cas"] == pytest.approx(sum(result[f"cas/task{k}"] for k in range(3)) / 3)


def test_a_conditional_model_is_scored_by_its_sample_labels():
    data = bar_data([[0, 1, 2]])

    def generate(z: Tensor, labels: Tensor) -> Tensor:
        return of_class(data, labels)

    result = evaluate(context(data, generate, num_classes=CLASSES), ["cas"])
    assert result["cas"] >= 0.9 and result["cas"] == result["cas/task0"]


def test_a_conditional_task_learns_only_from_the_labels_of_its_own_classes():
    """Asked for a class its task lacks, each generator makes one of its own: were those
    samples kept under the label asked for, a third of the training set would be mislabelled."""
    data = bar_data([[0, 1], [2]])
    own = [torch.tensor([0, 1]), torch.tensor([2])]

    def generate(z: Tensor, labels: Tensor) -> Tensor:
        wanted = labels.clone()
        for g, classes in enumerate(own):
            wanted[g][~torch.isin(wanted[g], classes)] = classes[0]
        return of_class(data, wanted)

    result = evaluate(context(data, generate, num_classes=CLASSES), ["cas"])
    assert result["cas/task0"] >= 0.9 and result["cas/task1"] >= 0.9


def test_the_directions_read_cas_up_and_the_reference_without_a_side():
    assert direction("cas") == direction("cas/task2") == "max"
    assert direction("cas_real") is None and direction("cas_real/task0") is None


@pytest.mark.parametrize(
    ("extra", "metric", "match"),
    [
        ([], "cas", r"`cas` needs real images held out.*data\.heldout=0\.1"),
        ([], "memorisation", r"`memorisation` needs real rows held out.*data\.heldout=0\.1"),
        (["data.heldout=0.2", "data.tasks=[[0,1],[2,3]]"], "cas", "tasks of one class each"),
        (["data.heldout=0.2", "data.name=ring8"], "cas", "images with 1 or 3 channels"),
    ],
)
def test_what_cannot_run_says_why_before_training(tiny, extra, metric, match):
    config = load_config("pertask", [*tiny, *extra])
    with pytest.raises(ConfigError, match=match):
        check_fits(config, build_tasks(config.data, config.seed), [metric])


def test_both_are_defaults_of_mtgan_eval_only_with_a_heldout_split(tiny):
    assert not {"cas", "memorisation"} & set(default_metrics(load_config("pertask", tiny)))
    held = load_config("pertask", [*tiny, "data.heldout=0.2"])
    assert {"cas", "memorisation"} <= set(default_metrics(held))
    check_fits(held, build_tasks(held.data, held.seed), ["cas", "memorisation"])


@pytest.mark.slow
def test_a_tiny_run_reports_both_per_task(tmp_path, tiny):
    metrics = ["eval.features=raw", "eval.n=64", "eval.metrics=[cas,memorisation]"]
    overrides = [*tiny, *metrics, "data.heldout=0.2"]
    run = api.train("pertask", overrides, out=tmp_path / "run", quiet=True)
    written = json.loads((run.path / "eval.json").read_text())
    most = {
        "cas": 1,
        "cas_real": 1,
        "memorisation": 1,
        "memorisation_excess": 1,
        "memorisation_rows": 40 + 100,  # at most every training and held-out row
    }
    for key in most:
        values = [written[f"{key}/task{k}"] for k in range(3)]
        assert all(0 <= v <= most[key] for v in values)
        assert written[key] == pytest.approx(sum(values) / 3)
    again = run.evaluate(["memorisation"])
    assert again["memorisation"] == pytest.approx(written["memorisation"], rel=1e-9)
