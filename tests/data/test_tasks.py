from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import Tensor

from mtgan.data import TaskSet, build_tasks
from mtgan.data.mnist import load_mnist5k
from mtgan.errors import ConfigError, DataError


def cfg(**kw) -> SimpleNamespace:
    base = dict(
        name="mnist",
        path=None,
        format="auto",
        tasks="single",
        domains=["identity"],
        split_domains=False,
        image_size=None,
        n_points=100_000,
        limit=None,
    )
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture(scope="module")
def mnist_classes() -> TaskSet:
    return build_tasks(cfg(tasks="classes"), seed=0)


def test_classes_gives_10_tasks_of_500_digits(mnist_classes):
    ts = mnist_classes
    assert ts.num_tasks == 10 and ts.kind == "image" and ts.shape == (1, 28, 28)
    assert ts.counts.tolist() == [500] * 10
    assert ts.offsets.tolist() == [500 * k for k in range(10)]
    assert ts.names == [f"digit {k}" for k in range(10)]
    assert ts.domains == ["identity"] * 10
    for k in range(10):
        assert (ts.labels[ts.offsets[k] : ts.offsets[k] + 500] == k).all()


def test_images_are_stored_in_minus_one_to_one_and_displayed_in_unit_range(mnist_classes):
    ts = mnist_classes
    assert ts.x.min() == -1.0 and ts.x.max() == 1.0
    x, _ = load_mnist5k()
    shown = ts.to_display(ts.task(3))
    assert torch.allclose(shown, x[ts.source[ts.offsets[3] : ts.offsets[3] + 500]], atol=1e-6)


def test_sample_shape_and_every_sample_comes_from_its_task(mnist_classes):
    ts = mnist_classes
    gen = torch.Generator().manual_seed(1)
    idx = ts.sample_indices(64, gen)
    assert idx.shape == (10, 64)
    assert (ts.labels[idx] == torch.arange(10)[:, None]).all()
    batch = ts.sample(64, torch.Generator().manual_seed(1))
    assert batch.shape == (10, 64, 1, 28, 28)
    assert torch.equal(batch, ts.x[idx])


def test_same_generator_seed_gives_identical_batches(mnist_classes):
    a = mnist_classes.sample(32, torch.Generator().manual_seed(7))
    b = mnist_classes.sample(32, torch.Generator().manual_seed(7))
    c = mnist_classes.sample(32, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_task_draws_only_from_that_task(mnist_classes):
    ts = mnist_classes
    out = ts.sample_task(4, 50, torch.Generator().manual_seed(0))
    assert out.shape == (50, 1, 28, 28)
    task = ts.task(4).flatten(1)
    assert (out.flatten(1)[:, None] == task[None]).all(dim=2).any(dim=1).all()


def test_split_domains_gives_disjoint_equal_parts():
    ts = build_tasks(
        cfg(tasks=[[3], [5, 6]], domains=["identity", "negative"], split_domains=True), seed=0
    )
    assert ts.names == ["digit 3", "digit 3/negative", "digits 5+6", "digits 5+6/negative"]
    assert ts.domains == ["identity", "negative"] * 2
    assert ts.counts.tolist() == [250, 250, 500, 500]
    for g in (0, 2):
        a = set(ts.source[ts.offsets[g] : ts.offsets[g] + ts.counts[g]].tolist())
        b = set(ts.source[ts.offsets[g + 1] : ts.offsets[g + 1] + ts.counts[g + 1]].tolist())
        assert not a & b
    # The negative task holds negatives of its own source images.
    x, _ = load_mnist5k()
    src = ts.source[ts.offsets[1] : ts.offsets[1] + 250]
    assert torch.allclose(ts.to_display(ts.task(1)), 1 - x[src], atol=1e-6)


def test_without_split_every_domain_sees_all_samples():
    ts = build_tasks(cfg(tasks=[[1]], domains=["identity", "edges"], limit=100), seed=0)
    assert ts.counts.tolist() == [100, 100]
    assert torch.equal(ts.source[:100], ts.source[100:])


def test_limit_is_a_seeded_subset():
    a = build_tasks(cfg(tasks="classes", limit=20), seed=0)
    b = build_tasks(cfg(tasks="classes", limit=20), seed=0)
    c = build_tasks(cfg(tasks="classes", limit=20), seed=1)
    assert a.counts.tolist() == [20] * 10
    assert torch.equal(a.x, b.x) and not torch.equal(a.source, c.source)


def test_ring8_points_by_mode():
    ts = build_tasks(cfg(name="ring8", tasks="classes", n_points=4000), seed=0)
    assert ts.kind == "points" and ts.shape == (2,) and ts.num_tasks == 8
    assert ts.names[4] == "mode 4" and int(ts.counts.sum()) == 4000
    assert torch.equal(ts.to_display(ts.x), ts.x)
    single = build_tasks(cfg(name="grid25", n_points=1000), seed=0)
    assert single.names == ["all"] and single.x.abs().max() < 5


def test_points_reject_image_domains():
    with pytest.raises(DataError, match="identity"):
        build_tasks(cfg(name="ring8", n_points=100, domains=["identity", "edges"]), seed=0)


def test_unknown_label_in_explicit_tasks_names_it_and_the_labels_present():
    with pytest.raises(DataError, match=r"\[11\].*0, 1, 2"):
        build_tasks(cfg(tasks=[[1], [11]]), seed=0)


def test_classes_without_labels_raises(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 6, 6), np.uint8))
    with pytest.raises(DataError, match="no labels"):
        build_tasks(cfg(path=tmp_path / "d.npz", tasks="classes"), seed=0)


def test_user_npz_single_task_without_labels(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.full((4, 6, 6), 255, np.uint8))
    ts = build_tasks(cfg(path=tmp_path / "d.npz"), seed=0)
    assert ts.names == ["all"] and ts.labels.tolist() == [-1] * 4
    assert (ts.x == 1.0).all()


def test_unknown_domain_is_a_config_error():
    with pytest.raises(ConfigError, match="blur"):
        build_tasks(cfg(domains=["blur"]), seed=0)


def test_to_moves_every_tensor(mnist_classes):
    moved = mnist_classes.to("cpu")
    assert moved.x.device.type == "cpu" and moved.names == mnist_classes.names


def _sources(ts: TaskSet, k: int) -> set[int]:
    return set(ts.source[ts.offsets[k] : ts.offsets[k] + ts.counts[k]].tolist())


def test_heldout_rows_are_a_seeded_stratified_split_disjoint_from_training():
    ts = build_tasks(cfg(tasks="classes", heldout=0.1), seed=0)
    held = ts.heldout
    assert held is not None and held.names == ts.names and held.domains == ts.domains
    assert held.counts.tolist() == [50] * 10 and ts.counts.tolist() == [450] * 10
    for k in range(10):
        assert (held.task_labels(k) == k).all()  # per task, per label
        assert not _sources(ts, k) & _sources(held, k)
    assert not set(ts.source.tolist()) & set(held.source.tolist())
    again = build_tasks(cfg(tasks="classes", heldout=0.1), seed=0).heldout
    other = build_tasks(cfg(tasks="classes", heldout=0.1), seed=1).heldout
    assert torch.equal(again.source, held.source) and not torch.equal(other.source, held.source)
    # one task of all digits: stratified by label, 10 % of each digit
    single = build_tasks(cfg(heldout=0.1), seed=0).heldout
    assert torch.bincount(single.labels).tolist() == [50] * 10


def test_a_heldout_row_is_held_out_in_every_task_and_domain_it_belongs_to():
    spec = cfg(tasks=[[0, 1], [1, 2]], domains=["identity", "negative"], split_domains=True,
               heldout=0.2, limit=100)  # fmt: skip
    ts = build_tasks(spec, seed=0)
    held = set(ts.heldout.source.tolist())
    assert not set(ts.source.tolist()) & held  # digit 1 is in two groups: never trained on
    assert ts.counts.tolist() == [100] * 4  # limit caps the training rows only
    assert ts.heldout.counts.tolist() == [200] * 4  # each domain judged on its group's rows
    x, _ = load_mnist5k()
    src = ts.heldout.source[ts.heldout.offsets[1] : ts.heldout.offsets[1] + 200]
    shown = ts.heldout.to_display(ts.heldout.task(1))
    assert torch.allclose(shown, 1 - x[src], atol=1e-6)  # the negative domain applied


def test_the_sampler_never_draws_a_heldout_row():
    ts = build_tasks(cfg(tasks=[[3], [5]], heldout=0.5, limit=30), seed=0)
    held = set(ts.heldout.source.tolist())
    gen = torch.Generator().manual_seed(0)
    drawn = {int(s) for _ in range(20) for s in ts.source[ts.sample_indices(64, gen)].flatten()}
    assert drawn == set(ts.source.tolist())  # every training row, and only those
    assert not drawn & held
    moved = ts.to("cpu")
    assert moved.heldout is ts.heldout  # the held-out rows stay where they are


def test_heldout_zero_changes_nothing_and_a_bad_fraction_is_a_config_error():
    a = build_tasks(cfg(tasks="classes", limit=20), seed=0)
    b = build_tasks(cfg(tasks="classes", limit=20, heldout=0.0), seed=0)
    assert b.heldout is None and torch.equal(a.source, b.source)
    with pytest.raises(ConfigError, match="data.heldout"):
        build_tasks(cfg(heldout=1.0), seed=0)


def test_heldout_points_are_split_per_mode():
    ts = build_tasks(cfg(name="ring8", tasks="classes", n_points=800, heldout=0.25), seed=0)
    total = ts.counts + ts.heldout.counts
    assert torch.allclose(ts.heldout.counts / total, torch.full((8,), 0.25), atol=0.01)


# ---------------------------------------------------------------- data.per_task


def _balanced(labels: Tensor, n: int, present: list[int]) -> bool:
    """n rows over exactly the labels present, each label's count within one of the others'."""
    counts = [int((labels == c).sum()) for c in present]
    return sum(counts) == n and max(counts) - min(counts) <= 1


def test_per_task_balances_each_tasks_labels_exactly():
    ts = build_tasks(cfg(tasks=[[0, 1, 2], [3], [4, 5, 6, 7, 8, 9]], per_task=10), seed=0)
    assert ts.counts.tolist() == [10, 10, 10]
    assert _balanced(ts.task_labels(0), 10, [0, 1, 2])  # 4 + 3 + 3
    assert _balanced(ts.task_labels(2), 10, list(range(4, 10)))  # 2 × 4 + 1 × 2
    assert ts.task_labels(1).tolist() == [3] * 10


def test_per_task_gives_a_short_labels_share_to_the_others(tmp_path):
    y = np.array([0] * 2 + [1] * 20 + [2] * 20)
    np.savez(tmp_path / "d.npz", x=np.zeros((len(y), 6, 6), np.uint8), y=y)
    ts = build_tasks(cfg(path=tmp_path / "d.npz", per_task=12), seed=0)
    assert torch.bincount(ts.labels).tolist() == [2, 5, 5]


def test_per_task_is_seeded_repeatable_and_a_smaller_n_is_inside_a_larger():
    a = build_tasks(cfg(tasks=[[0, 1], [2]], per_task=11), seed=0)
    assert torch.equal(a.source, build_tasks(cfg(tasks=[[0, 1], [2]], per_task=11), 0).source)
    assert not torch.equal(a.source, build_tasks(cfg(tasks=[[0, 1], [2]], per_task=11), 1).source)
    more = build_tasks(cfg(tasks=[[0, 1], [2]], per_task=40), seed=0)
    for k in range(2):
        assert _sources(a, k) < _sources(more, k)  # more data adds rows, it does not redraw


def test_per_task_leaves_the_heldout_reference_the_same_for_every_n():
    plain = build_tasks(cfg(tasks="classes", heldout=0.1), seed=0).heldout
    for n in (5, 50, 450):
        ts = build_tasks(cfg(tasks="classes", heldout=0.1, per_task=n), seed=0)
        assert ts.counts.tolist() == [n] * 10
        assert torch.equal(ts.heldout.source, plain.source)
        assert not set(ts.source.tolist()) & set(plain.source.tolist())


def _npz_source(tmp_path):
    y = np.repeat(np.arange(3), [30, 24, 18])
    x = (np.arange(len(y)) % 256).astype(np.uint8)[:, None, None] * np.ones((1, 6, 6), np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    return {"path": tmp_path / "d.npz"}


def _idx_source(tmp_path):
    y = np.repeat(np.arange(3), [30, 24, 18]).astype(np.uint8)
    for name, a in (("train-images-idx3-ubyte", np.zeros((len(y), 5, 5), np.uint8)),
                    ("train-labels-idx1-ubyte", y)):  # fmt: skip
        header = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
        (tmp_path / name).write_bytes(header + a.tobytes())
    return {"path": tmp_path}


def _folder_source(tmp_path):
    from PIL import Image

    for cls, n in (("cat", 30), ("dog", 24), ("eel", 18)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("L", (8, 8), i).save(tmp_path / cls / f"{i}.png")
    return {"path": tmp_path}


SOURCES = {
    "mnist": lambda _: {"name": "mnist"},
    "ring8": lambda _: {"name": "ring8", "n_points": 400},
    "npz": _npz_source,
    "idx": _idx_source,
    "folder": _folder_source,
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("tasks", ["single", "classes"])
def test_per_task_takes_n_balanced_rows_from_every_data_source(tmp_path, source, tasks):
    spec = {"name": None, **SOURCES[source](tmp_path), "tasks": tasks, "heldout": 0.2}
    small = build_tasks(cfg(**spec, per_task=6), seed=3)
    large = build_tasks(cfg(**spec, per_task=12), seed=3)
    assert small.counts.tolist() == [6] * small.num_tasks
    assert torch.equal(small.heldout.source, large.heldout.source)  # the same reference
    for k in range(small.num_tasks):
        present = sorted(set(small.heldout.task_labels(k).tolist()))
        assert _balanced(small.task_labels(k), 6, present)  # points: 6 of one mode, or 8 modes
        assert _sources(small, k) < _sources(large, k)
    assert torch.equal(small.source, build_tasks(cfg(**spec, per_task=6), seed=3).source)


def test_per_task_applies_to_each_domain_as_built():
    split = build_tasks(cfg(tasks=[[1]], domains=["identity", "edges"], split_domains=True,
                            per_task=30), seed=0)  # fmt: skip
    assert split.counts.tolist() == [30, 30] and not _sources(split, 0) & _sources(split, 1)
    shared = build_tasks(cfg(tasks=[[1], [2]], domains=["identity", "negative"], per_task=30), 0)
    assert shared.counts.tolist() == [30] * 4
    assert _sources(shared, 0) == _sources(shared, 1) and _sources(shared, 2) == _sources(shared, 3)


def test_too_few_rows_for_per_task_name_the_task_and_its_count():
    with pytest.raises(DataError, match=r"'digit 0' has 450 training rows after data.heldout="):
        build_tasks(cfg(tasks="classes", heldout=0.1, per_task=451), seed=0)
    with pytest.raises(DataError, match=r"'digit 1' has 250 .* after the domain split"):
        build_tasks(cfg(tasks=[[1]], domains=["identity", "edges"], split_domains=True,
                        per_task=251), seed=0)  # fmt: skip
    with pytest.raises(ConfigError, match="data.per_task"):
        build_tasks(cfg(per_task=0), seed=0)
