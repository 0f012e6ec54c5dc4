"""`train.keep_heap=auto` keeps glibc's heap only where the run's own networks measured faster
with it; the settings take effect in this process and are recorded in the run directory."""

from __future__ import annotations

import ctypes
import json

import pytest
import torch

from mtgan.training import allocator
from mtgan.training.allocator import CACHE, decide_heap, heap_probe, set_keep_heap
from mtgan.training.precision import machine_key

CPU = torch.device("cpu")
BLOCK = 2**30
glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc's mallopt only")


def _probe(default_s: float, kept_s: float, calls: list):
    def probe():
        calls.append(1)
        return default_s, kept_s

    return probe


@glibc
@pytest.mark.parametrize(
    ("default_s", "kept_s", "keep"),
    [(1.3, 1.0, True), (1.0, 1.2, False), (1.0, 0.99, False)],  # the last: within noise
    ids=["faster", "slower", "no-gain"],
)
def test_auto_keeps_the_heap_only_where_it_measured_faster(tmp_path, default_s, kept_s, keep):
    calls: list[int] = []
    heap = decide_heap("auto", CPU, "nets", _probe(default_s, kept_s, calls), tmp_path)
    assert heap.keep is keep and calls == [1]
    assert f"{default_s / kept_s:.2f}× as fast with it (measured now)" in heap.reason
    again = decide_heap("auto", CPU, "nets", _probe(9.0, 1.0, calls), tmp_path)
    assert again.keep is keep and calls == [1] and "measured earlier" in again.reason
    cached = json.loads((tmp_path / CACHE).read_text())
    assert cached == {f"{machine_key(CPU)}; nets": pytest.approx(default_s / kept_s)}
    # other networks are measured apart
    decide_heap("auto", CPU, "other nets", _probe(1.0, 1.0, calls), tmp_path)
    assert calls == [1, 1]


@glibc
def test_set_values_and_gpu_runs_never_probe(tmp_path):
    calls: list[int] = []
    assert decide_heap(True, CPU, "k", _probe(1, 9, calls), tmp_path).keep is True
    assert decide_heap(False, CPU, "k", _probe(9, 1, calls), tmp_path).keep is False
    cuda = decide_heap("auto", torch.device("cuda"), "k", _probe(9, 1, calls), tmp_path)
    assert cuda.keep is False and "cuda" in cuda.reason
    assert calls == []


def _mmapped_blocks() -> int:
    class MallInfo2(ctypes.Structure):
        names = ["arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks"]
        names += ["uordblks", "fordblks", "keepcost"]
        _fields_ = [(n, ctypes.c_size_t) for n in names]

    libc = allocator._libc()
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc before 2.33 has no mallinfo2")
    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2().hblks


@glibc
def test_the_settings_take_effect_and_can_be_undone():
    try:
        assert set_keep_heap(False)
        before = _mmapped_blocks()
        # above glibc's mmap threshold, and larger than any free block the heap may hold
        # (a kept heap's free chunks serve a smaller block without an mmap); never touched
        block = torch.empty(BLOCK, dtype=torch.uint8)
        assert _mmapped_blocks() == before + 1  # glibc's default: its own mmap
        del block
        assert set_keep_heap(True)
        before = _mmapped_blocks()
        block = torch.empty(BLOCK, dtype=torch.uint8)
        assert _mmapped_blocks() == before  # kept: from the heap
        del block
    finally:
        set_keep_heap(False)


@glibc
def test_the_probe_alternates_and_leaves_glibcs_defaults():
    seen = []
    probe = heap_probe(lambda: seen.append(allocator._kept), rounds=2, budget_s=60.0)
    default_s, kept_s = probe()
    assert default_s > 0 and kept_s > 0
    assert seen == [False, False, True, True] * 2 and allocator._kept is False
    seen.clear()  # a step slower than the budget: one round
    heap_probe(lambda: seen.append(allocator._kept), rounds=2, budget_s=0.0)()
    assert seen == [False, False, True, True] and allocator._kept is False


@glibc
def test_the_run_directory_says_what_auto_chose_and_why(tmp_path, tiny):
    from mtgan import api
    from mtgan.training import RunDir

    try:
        run = api.train("pertask", [*tiny, "train.steps=2"], out=tmp_path / "run", quiet=True)
        heap = RunDir(run.path).read_precision()["heap"]
        assert heap["asked"] == "auto" and isinstance(heap["keep"], bool)
        assert "as fast with it" in heap["reason"] and heap["keep"] is allocator._kept
    finally:
        set_keep_heap(False)
