"""The trainer: builds data, networks, terms and phases from a config and runs the phase loop.

`train_step` is the algorithm: draw each task's real batch and one noise batch per generator,
generate the fakes once, then for each phase due at this step evaluate its terms, let its
balancer combine them, differentiate w.r.t. the phase's own parameters and step.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from mtgan.config import ExperimentConfig
from mtgan.data import TaskSet, build_tasks
from mtgan.errors import RunError
from mtgan.metrics.evaluate import EvalContext, evaluate, mixture_name
from mtgan.nets import MultiGAN
from mtgan.objectives.terms import build_terms
from mtgan.report import save_task_grids
from mtgan.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from mtgan.training.context import StepContext
from mtgan.training.ema import EMA
from mtgan.training.phases import Phase, build_phases
from mtgan.training.rundir import RunDir, TensorBoard


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError("train.device=cuda, but no CUDA device is available; use auto or cpu")
    return torch.device(name)


class Trainer:
    """Everything one run trains, with its state; `fit` runs the loop to `train.steps`."""

    def __init__(self, config: ExperimentConfig, data: TaskSet | None = None):
        self.config = config
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        self.device = pick_device(train.device)
        self.data = (data or build_tasks(config.data, config.seed)).to(self.device)
        torch.manual_seed(config.seed)  # network initialisation
        self.model = MultiGAN(config.model, self.data.shape, self.data.num_tasks).to(self.device)
        self.terms = build_terms(config)
        self.phases: list[Phase] = build_phases(config, self.model, self.terms)
        self.ema = EMA(self.model.generator, train.ema) if train.ema else None
        self.data_rng = torch.Generator(self.device).manual_seed(config.seed + 1)
        self.noise_rng = torch.Generator(self.device).manual_seed(config.seed + 2)
        fixed = torch.Generator().manual_seed(config.seed + 3)
        shape = (self.model.num_generators, train.samples_per_task, self.model.z_dim)
        self.fixed_z = torch.randn(shape, generator=fixed).to(self.device)
        # 2D plots show the real data underneath the samples; images need no such backdrop.
        self.backdrop: Tensor | None = None
        if self.data.kind == "points":
            self.backdrop = self.data.sample(1000, fixed.manual_seed(config.seed + 4))
        self.step = 0

    # ------------------------------------------------------------------ the algorithm

    def train_step(self, record: bool = False) -> dict[str, float] | None:
        """One step of the phase loop; returns the logged losses when `record` is set."""
        cfg = self.config.train
        real = self.data.sample(cfg.batch_size, self.data_rng)
        z = torch.randn(
            (self.model.num_generators, cfg.batch_size, self.model.z_dim),
            generator=self.noise_rng,
            device=self.device,
        )
        ctx = StepContext(self.model, real, z, self.step, self.noise_rng)
        logged: dict[str, Tensor] = {}
        pending = []
        for phase in (p for p in self.phases if p.due(self.step)):
            losses = phase.losses(ctx)
            loss = phase.loss(losses)
            grads = phase.gradients(loss)
            if cfg.schedule == "alternating":
                phase.apply(grads)
                ctx.invalidate()
            else:  # simultaneous: every phase's gradients at the same parameters, then apply
                pending.append((phase, grads))
            if record:
                logged.update(_phase_record(phase.name, loss, losses, grads))
        for phase, grads in pending:
            phase.apply(grads)
        if self.ema is not None:
            self.ema.update(self.model.generator)
        self.step += 1
        if not record:
            return None
        values = torch.stack(list(logged.values())).tolist()  # one device sync per log step
        return dict(zip(logged, values))

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, z: Tensor, use_ema: bool = True) -> Tensor:
        """Samples (NG, N, *shape) from noise (NG, N, z_dim), in the data's display range."""
        net = self.ema.net if (use_ema and self.ema is not None) else self.model.generator
        was_training = net.training
        net.eval()
        try:
            out = net(z.to(self.device))
        finally:
            net.train(was_training)
        out = out.reshape(*out.shape[:2], *self.model.data_shape)
        return self.data.to_display(out)

    # ------------------------------------------------------------------ state

    def weights(self) -> torch.nn.Module:
        """The module whose tensors are saved as weights (model and, if any, EMA)."""
        modules = {"model": self.model}
        if self.ema is not None:
            modules["ema"] = self.ema
        return torch.nn.ModuleDict(modules)

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {p.name: p.optimizer.state_dict() for p in self.phases},
            "balancers": {p.name: p.balancer.state_dict() for p in self.phases},
            "rng": {
                "data": self.data_rng.get_state(),
                "noise": self.noise_rng.get_state(),
                "torch": torch.get_rng_state(),
            },
            "fixed_z": self.fixed_z.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        for phase in self.phases:
            phase.optimizer.load_state_dict(state["optimizers"][phase.name])
            phase.balancer.load_state_dict(state["balancers"][phase.name])
        self.data_rng.set_state(state["rng"]["data"])
        self.noise_rng.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        self.fixed_z = state["fixed_z"].to(self.device)

    def save(self, run: RunDir) -> None:
        save_checkpoint(
            run.checkpoints,
            self.step,
            self.weights(),
            self.state_dict(),
            self.config.train.keep_checkpoints,
        )

    def restore(self, run: RunDir) -> bool:
        """Load the latest checkpoint of `run`; False if it has none yet."""
        path = latest_checkpoint(run.checkpoints)
        if path is None:
            return False
        self.load_state_dict(load_checkpoint(path, self.weights(), self.device))
        return True

    # ------------------------------------------------------------------ the loop

    def fit(self, run: RunDir, quiet: bool = False) -> None:
        """Train until `train.steps`, logging, sampling and checkpointing into `run`."""
        cfg = self.config.train
        board = TensorBoard(run.path, cfg.tensorboard)
        start, t0 = self.step, time.perf_counter()
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=quiet or not cfg.progress,
            desc="train",
            dynamic_ncols=True,
        )
        try:
            while self.step < cfg.steps:
                log = (self.step + 1) % cfg.log_every == 0 or self.step + 1 == cfg.steps
                record = self.train_step(record=log)
                bar.update(1)
                if record is not None:
                    elapsed = time.perf_counter() - t0
                    record = {"step": self.step, **record, "time": elapsed}
                    record["sec_per_step"] = elapsed / max(self.step - start, 1)
                    run.append_metrics(record)
                    board.scalars(record)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k in _SHOWN})
                if self.step % cfg.sample_every == 0 or self.step == cfg.steps:
                    self.write_samples(run)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save(run)
                if self._eval_due():
                    self._log_eval(run, board)
        finally:
            bar.close()
            board.close()

    def _eval_due(self) -> bool:
        ev = self.config.eval
        if not ev.metrics:
            return False
        return self.step == self.config.train.steps or bool(ev.every and self.step % ev.every == 0)

    def eval_context(self, records: list[dict[str, Any]] | None = None) -> EvalContext:
        """Evaluation of the current generators (the EMA ones when enabled) on the training data."""
        return EvalContext(
            self.data,
            self.config.eval,
            self.generate,
            self.model.z_dim,
            self.model.num_generators,
            mixture=mixture_name(self.config),
            records=records,
            seed=self.config.seed,
            device=self.device,
        )

    def _log_eval(self, run: RunDir, board: TensorBoard) -> None:
        ctx = self.eval_context(run.read_metrics())
        result = evaluate(ctx, self.config.eval.metrics)
        record = {"step": self.step, **{f"eval/{k}": v for k, v in result.items()}}
        run.append_metrics(record)
        board.scalars(record)
        if self.step == self.config.train.steps:
            meta = {"features": ctx.features_name, "n": ctx.config.n}
            run.write_eval({"step": self.step, "ema": self.ema is not None, **meta, **result})

    def write_samples(self, run: RunDir) -> None:
        samples = self.generate(self.fixed_z)
        real = None if self.backdrop is None else self.backdrop.cpu()
        save_task_grids(
            samples.cpu(), run.samples, self.step, self.data.names, self.data.kind, real=real
        )


_SHOWN = ("d/loss", "g/loss")


def _phase_record(
    name: str, loss: Tensor, losses: dict[str, Tensor], grads: list[Tensor | None]
) -> dict[str, Tensor]:
    """Detached scalars to log for one phase: total, each term (mean and per task), grad norm."""
    out = {f"{name}/loss": loss.detach()}
    for term, values in losses.items():
        values = values.detach()
        out[f"{name}/{term}"] = values.mean()
        if values.numel() > 1:
            out.update({f"{name}/{term}/task{k}": v for k, v in enumerate(values)})
    norms = [g.detach().norm() for g in grads if g is not None]
    if norms:
        out[f"{name}/grad_norm"] = torch.stack(norms).norm()
    return out
