"""The tuner: `auto` speed switches decided by racing whole training steps of the run itself,
cached per machine and run shapes, and leaving no trace in the run."""

from __future__ import annotations

import json

import pytest
import torch

from mtgan import api
from mtgan.config import load_config
from mtgan.training import RunDir, Trainer, tuner
from mtgan.training.allocator import _libc, set_keep_heap
from mtgan.training.trainer import build_tuned
from mtgan.training.tuner import CACHE, tune

DCGAN = ["model.arch=dcgan", "model.z_dim=8", "model.g_hidden=[16,8]", "model.d_hidden=[8,16]"]
PROBE = Trainer  # never called: the race is replaced in these tests (`measured`)
AUTO = ["train.precision=auto", "train.channels_last=auto", "train.keep_heap=auto"]


def _auto(tiny: list[str], *more: str):
    fixed = [t for t in tiny if not t.startswith("train.precision")]
    return load_config("pertask", [*fixed, *AUTO, *more])


@pytest.fixture
def measured(monkeypatch):
    """Replaces the race by given speeds (candidate over reference) per switch; records the
    switches measured and the config each was measured under."""
    speeds: dict[str, float] = {}
    calls: list[tuple[str, str, bool]] = []

    def fake(switch, config, build, dist, settings, budget_s):
        calls.append((switch.name, config.train.precision, config.train.channels_last))
        return speeds.get(switch.name, 1.0)

    monkeypatch.setattr(tuner, "_measure", fake)
    monkeypatch.setattr(tuner, "_busy", lambda: "")  # an idle machine unless a test says not
    return speeds, calls


@pytest.mark.parametrize(
    ("speed", "chosen"),
    [(1.5, "bf16"), (0.33, "fp32"), (1.02, "fp32")],
    ids=["native", "emulated", "no-gain"],
)
def test_auto_precision_takes_bf16_only_where_whole_steps_ran_faster(
    tmp_path, tiny, monkeypatch, measured, speed, chosen
):
    speeds, calls = measured
    speeds["precision"] = speed
    monkeypatch.setenv("MTGAN_CACHE", str(tmp_path))
    config = _auto(tiny, "train.keep_heap=false")
    v = tune(config, build=PROBE)["precision"]
    assert v.value == chosen and calls == [("precision", "fp32", False)]
    assert f"bf16 ran {speed:.2f}× as fast as fp32 on this CPU (measured now)" in v.reason
    # cached: the next run does not measure again, and decides the same
    again = tune(config, build=PROBE)["precision"]
    assert again.value == chosen and len(calls) == 1 and "(measured earlier)" in again.reason
    # a library user's Trainer takes the cached verdict without measuring
    assert Trainer(config).precision == chosen and len(calls) == 1
    assert (tmp_path / CACHE).exists()


def test_set_values_and_ruled_out_settings_never_measure(tmp_path, tiny, measured):
    _, calls = measured
    set_all = tune(
        load_config("pertask", [*tiny, "train.keep_heap=false"]), cache=tmp_path, build=PROBE
    )
    assert set_all["precision"].reason == "set by train.precision"
    assert set_all["keep_heap"].reason == "set by train.keep_heap" or _libc() is None
    assert set_all["channels_last"].reason == "no convolutions"
    points = tune(
        load_config("gan-2d", [*AUTO, "train.keep_heap=false"]), cache=tmp_path, build=PROBE
    )
    assert points["precision"].value == "fp32" and "2D points" in points["precision"].reason
    assert points["channels_last"].value is False
    assert calls == []


def test_each_switch_is_timed_under_the_verdicts_before_it(tmp_path, tiny, measured):
    speeds, calls = measured
    speeds.update(precision=2.0, channels_last=1.5, keep_heap=1.0)
    verdicts = tune(_auto(tiny, *DCGAN), cache=tmp_path, build=PROBE)
    assert [v.value for v in verdicts.values()] == [False, "bf16", True]
    order = [(name, p, cl) for name, p, cl in calls]
    expected = [("precision", "fp32", False), ("channels_last", "bf16", False)]
    if _libc() is not None:
        expected.insert(0, ("keep_heap", "fp32", False))
    assert order == expected
    keys = list(json.loads((tmp_path / CACHE).read_text()))
    assert any(
        k.startswith("cpu: ") and "channels_last" in k and "precision=bf16" in k for k in keys
    )


def test_the_cache_tells_runs_of_other_shapes_apart(tmp_path, tiny, measured):
    _, calls = measured
    tune(_auto(tiny, "train.keep_heap=false"), cache=tmp_path, build=PROBE)
    tune(_auto(tiny, "train.keep_heap=false", "train.batch_size=16"), cache=tmp_path, build=PROBE)
    tune(
        _auto(tiny, "train.keep_heap=false", "model.g_hidden=[16,32]"), cache=tmp_path, build=PROBE
    )
    tune(
        _auto(tiny, "train.keep_heap=false", "train.steps=99", "seed=3"),
        cache=tmp_path,
        build=PROBE,
    )
    assert len(calls) == 3  # steps and seed do not change a step's work


def test_a_gpu_without_bf16_races_fp16(tmp_path, tiny, monkeypatch, measured):
    speeds, calls = measured
    speeds["precision"] = 3.0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(tuner, "pick_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(tuner, "device_for", lambda dist, device: device)
    v = tune(_auto(tiny), cache=tmp_path, build=PROBE)
    assert v["precision"].value == "fp16"
    assert v["precision"].reason.startswith("this GPU has no bf16; fp16 ran 3.00× as fast")
    assert v["keep_heap"].value is False and "cuda" in v["keep_heap"].reason
    assert "Tesla T4" in next(iter(json.loads((tmp_path / CACHE).read_text())))


def test_the_race_warms_up_every_setting_and_alternates():
    entered: list[object] = []
    steps: list[str] = []

    class Heapish(tuner.Switch):
        name, settle = "keep_heap", 1

        def enter(self, value):
            entered.append(value)

    def step(tag, seconds):
        def run():
            steps.append(tag)
            return seconds

        return run

    best = tuner._race(
        Heapish(), [step("a", 2.0), step("b", 1.0)], (False, True), tuner.SINGLE, 0.0
    )
    assert best == [2.0, 1.0]
    # one warm-up step each, then a round: a settling step and a timed one per setting
    assert steps == ["a", "b", "a", "a", "b", "b"] and entered == [False, True, False, True]


def test_whole_training_steps_are_timed_on_throwaway_trainers(tmp_path, tiny, monkeypatch):
    built: list[Trainer] = []
    original = Trainer.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(Trainer, "__init__", spy)
    config = _auto(tiny, "train.keep_heap=false")
    trainer = build_tuned(config)
    probes = built[:-1]
    assert [t.precision for t in probes] == ["fp32", "bf16"] and built[-1] is trainer
    assert all(t.step >= 2 for t in probes)  # a warm-up step and at least one timed step
    assert trainer.step == 0
    # the probe leaves no trace: the run equals one built with the verdicts set by hand
    chosen = [f"train.{name}={v.value}" for name, v in trainer.verdicts.items()]
    by_hand = Trainer(load_config("pertask", [*tiny, *chosen]))
    for _ in range(3):
        trainer.train_step()
        by_hand.train_step()
    a, b = trainer.weights().state_dict(), by_hand.weights().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_run_directory_says_what_each_switch_chose_and_why(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(tuner, "_busy", lambda: "")  # cached even while the machine is busy
    overrides = [t for t in tiny if not t.startswith(("train.precision", "train.keep_heap"))]
    try:
        run = api.train(
            "pertask", [*overrides, *DCGAN, "train.steps=2"], out=tmp_path / "r", quiet=True
        )
    finally:
        set_keep_heap(False)
    record = RunDir(run.path).read_tuning()
    assert list(record) == ["keep_heap", "precision", "channels_last"]
    assert record["precision"]["asked"] == "auto" and record["precision"]["chosen"] in (
        "fp32",
        "bf16",
    )
    assert "as fast as fp32 on this CPU" in record["precision"]["reason"]
    layout = record["channels_last"]
    assert "as fast as contiguous on this CPU" in layout["reason"]
    trainer = Trainer(load_config("pertask", [*overrides, *DCGAN]))  # the cached verdicts
    assert trainer.precision == record["precision"]["chosen"]
    convs = [m for m in trainer.model.modules() if hasattr(m, "channels_last")]
    assert convs and all(c.channels_last is layout["chosen"] for c in convs)


def test_a_measurement_on_a_busy_machine_decides_its_run_but_is_not_cached(
    tmp_path, tiny, measured, monkeypatch
):
    speeds, calls = measured
    speeds["precision"] = 2.0
    monkeypatch.undo()  # the real _busy, on a load average said here
    monkeypatch.setattr(tuner, "_measure", lambda *a: (calls.append(a[0].name), 2.0)[1])
    monkeypatch.setattr(tuner.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setattr(tuner.os, "cpu_count", lambda: 2)
    config = _auto(tiny, "train.keep_heap=false")
    v = tune(config, cache=tmp_path, build=PROBE)["precision"]
    assert v.value == "bf16" and "not cached (load average 9.0 on 2 cores)" in v.reason
    assert not (tmp_path / CACHE).exists()
    monkeypatch.setattr(tuner.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    tune(config, cache=tmp_path, build=PROBE)
    assert len(calls) == 2 and (tmp_path / CACHE).exists()


@pytest.mark.slow
def test_every_rank_takes_rank_0s_verdicts(tmp_path):
    from two_processes import launch

    launch("tuner_worker.py", tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and set(ranks[0]) == {"keep_heap", "precision", "channels_last"}
