"""Where a CUDA training step's time goes: GPU-busy time, kernels and host syncs per step.

PYTHONPATH=src python benchmarks/gpu_profile.py     # on a CUDA machine
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from mtgan.config import load_config
from mtgan.training import Trainer


def main() -> None:
    for name in ["speed-mlp", "pertask"]:
        overrides = ["train.progress=false", "train.device=cuda", "train.batch_size=256"]
        trainer = Trainer(load_config(name, overrides))
        for _ in range(20):
            trainer.train_step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                trainer.train_step()
            torch.cuda.synchronize()
        events = prof.key_averages()
        busy = sum(e.self_device_time_total for e in events) / 10 / 1000
        kernels = sum(e.count for e in events if e.device_type.name == "CUDA") / 10
        syncs = sum(e.count for e in events if "Synchronize" in e.key) / 10
        print(f"{name}: GPU busy {busy:.2f} ms/step, {kernels:.0f} kernels/step, {syncs:.0f} syncs")
        print(events.table(sort_by="cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
