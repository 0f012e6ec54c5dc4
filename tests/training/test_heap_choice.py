"""`train.keep_heap`: glibc's settings take effect in this process, can be undone, and what
`auto` chose is recorded in the run directory (the race itself: test_tuner.py)."""

from __future__ import annotations

import ctypes

import pytest
import torch

from mtgan.training import allocator
from mtgan.training.allocator import set_keep_heap

CPU = torch.device("cpu")
BLOCK = 2**30
glibc = pytest.mark.skipif(allocator._libc() is None, reason="glibc's mallopt only")


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
def test_the_run_directory_says_what_auto_chose_and_why(tmp_path, tiny):
    from mtgan import api
    from mtgan.training import RunDir

    try:
        auto = [*tiny, "train.keep_heap=auto", "train.steps=2"]
        run = api.train("pertask", auto, out=tmp_path / "run", quiet=True)
        heap = RunDir(run.path).read_tuning()["keep_heap"]
        assert heap["asked"] == "auto" and isinstance(heap["chosen"], bool)
        assert "as fast as glibc's defaults" in heap["reason"]
        assert heap["chosen"] is allocator._kept
    finally:
        set_keep_heap(False)
