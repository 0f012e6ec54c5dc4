"""train.accumulate=N against the unsplit step: the same weights after STEPS steps, to float
summation order, for every preset and every balancer that accumulates; the others are refused
at build time with a message that names the field. Batch norm is off (`model.g_norm=none`): its
statistics are per micro-batch. Under a hinge loss the discriminators' output bias is left out:
its gradient is zero but for rounding (two_processes.without_margin_bias)."""

from __future__ import annotations

import pytest
from accumulate_worker import SETUPS, STEPS, accumulate_config
from matrix import BALANCER_NAMES, PRESETS, tiny
from two_processes import assert_two_equal_one, max_diff, trained, without_margin_bias

from mtgan.balance import BALANCERS
from mtgan.config import load_config
from mtgan.errors import ConfigError
from mtgan.training import Trainer

TOLERANCE = 1e-5
# 40 splits into 2 micro-batches for every preset's networks: 10 or 4 generators on one task
# (4 or 10 fakes each), 5 discriminators splitting it
BATCH = "train.batch_size=40"
ACCUMULATING = sorted(name for name, cls in BALANCERS.items() if cls.weights_from_state)


def config(preset: str, accumulate: int, *extra: str):
    overrides = tiny(preset, BATCH, "model.g_norm=none", *extra, f"train.accumulate={accumulate}")
    return load_config(preset, overrides)


def assert_same_step(preset: str, accumulate: int, *extra: str) -> None:
    unsplit = config(preset, 1, *extra)
    whole = without_margin_bias(trained(unsplit, STEPS), unsplit)
    split = without_margin_bias(trained(config(preset, accumulate, *extra), STEPS), unsplit)
    diff = max_diff(whole, split)
    print(f"{preset} {' '.join(extra)} accumulate={accumulate}: max |Δw| = {diff:.2e}")
    assert diff < TOLERANCE


def pools_generators(preset: str) -> bool:
    """Whether a task's fakes come from several generators (MGAN, MAD-GAN)."""
    cfg = load_config(preset)
    return (cfg.model.generators or 1) > 1 and cfg.data.tasks == "single"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_with_fixed_weights_accumulates_to_the_unsplit_step(preset):
    assert_same_step(preset, 2, "balance.d=fixed", "balance.g=fixed")


@pytest.mark.parametrize("balancer", BALANCER_NAMES)
def test_every_balancer_on_pertask_accumulates_or_is_refused(balancer):
    chosen = [f"balance.d={balancer}", f"balance.g={balancer}"]
    if balancer in ACCUMULATING:
        assert_same_step("pertask", 2, *chosen)
        return
    with pytest.raises(ConfigError) as refused:
        Trainer(config("pertask", 2, *chosen))
    message = str(refused.value)
    assert f"train.accumulate=2: balance.d={balancer}" in message
    assert f"({', '.join(ACCUMULATING)})" in message


def test_a_refused_generator_balancer_is_named_by_its_field():
    with pytest.raises(ConfigError, match=r"balance\.g=dwa .*\(fixed, rlw\)"):
        Trainer(config("pertask", 2, "balance.d=fixed", "balance.g=dwa"))


@pytest.mark.parametrize("accumulate", [2, 4])
@pytest.mark.parametrize(
    "penalty", [["loss.gp=1"], ["loss.r1=1", "loss.r1_every=2"], ["model.d_norm=spectral"]]
)
def test_penalties_and_spectral_norm_accumulate_to_the_unsplit_step(penalty, accumulate):
    # GP's interpolation weights: each micro-batch takes its columns of the one global draw;
    # lazy R1 in its own phase; spectral norm's power iteration once per pass, not per part
    assert_same_step("pertask", accumulate, *penalty)


@pytest.mark.parametrize("preset", PRESETS)
def test_gp_accumulates_except_where_generators_pool_its_pairs(preset):
    fixed = ["balance.d=fixed", "balance.g=fixed", "loss.gp=1"]
    if not pools_generators(preset):
        assert_same_step(preset, 2, *fixed)
        return
    with pytest.raises(ConfigError, match=r"train\.accumulate=2: gp pairs real with fake"):
        Trainer(config(preset, 2, *fixed))


@pytest.mark.parametrize("preset", [p for p in PRESETS if pools_generators(p)])
def test_gp_with_pooled_generators_is_refused_under_processes_too(preset):
    # The same pairing: rank r's real rows are not paired with the fakes a single process
    # pairs them with. Refused before any collective, so a Dist without a process group does.
    from mtgan.training.distributed import Dist

    with pytest.raises(ConfigError, match=r"--nproc 2: gp pairs real with fake .* shard"):
        Trainer(config(preset, 1, "loss.gp=1"), dist=Dist(rank=0, world=2))


def test_the_simultaneous_schedule_with_random_weights_accumulates():
    # rlw draws once per step, not once per micro-batch
    extra = ["train.schedule=simultaneous", "balance.d=rlw", "balance.g=rlw", "loss.gp=1"]
    assert_same_step("pertask", 2, *extra)


def test_a_batch_that_does_not_split_evenly_is_refused():
    with pytest.raises(ConfigError, match=r"train\.batch_size=40 .* train\.accumulate=3"):
        Trainer(config("pertask", 3))
    # 40 fakes from 10 generators: 4 each, which 8 micro-batches cannot split
    with pytest.raises(ConfigError, match=r"train\.accumulate=8 .*10 generators makes 4"):
        Trainer(config("mgan", 8))


def test_fakes_are_generated_again_per_phase_unless_a_d_step_moves_a_g_layer():
    trainer = Trainer(config("pertask", 4))
    assert trainer.micro.regenerate  # G and D share nothing: fakes are generated again
    assert not Trainer(config("seed-gd", 2)).micro.regenerate  # D's step moves a G layer


@pytest.mark.slow
def test_two_processes_accumulating_equal_one_process_unsplit(tmp_path):
    configs = {s: accumulate_config(s, 2) for s in SETUPS}
    unsplit = {s: accumulate_config(s, 1) for s in SETUPS}
    label = "2 processes × accumulate vs 1 process"
    assert_two_equal_one(
        "accumulate_worker.py", tmp_path, configs, STEPS, TOLERANCE, label, unsplit
    )


def test_the_logs_read_the_whole_batch():
    # each term's loss per objective, the total and the gradient norm: means over micro-batches
    logs = []
    for accumulate in (1, 4):
        trainer = Trainer(config("pertask", accumulate, "balance.d=rlw", "loss.gp=1"))
        logs.append(trainer.train_step(record=True))
    assert logs[0].keys() == logs[1].keys()
    for key, value in logs[0].items():
        assert logs[1][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
