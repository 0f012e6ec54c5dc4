"""What one training step has drawn and computed, shared by every term of every phase.

Fake samples are generated once per step and reused; discriminator outputs (the adversarial
logit and every extra head) are cached until a parameter update makes them stale
(`invalidate`). Samples reach the discriminators by task: with one network per task, network k
sees task k; with several networks on a single task, their samples are pooled and split evenly
over that task's discriminators (MGAN: many generators, one D; GMAN: one G, many Ds, each on
its own slice of the batch). It provides `objectives.context.TermContext`, what terms read.

With `loss.augment`, every image a discriminator sees passes through `augmented` first: fresh
draws for each discriminator call (real and fake apart, D phase apart from G phase), drawn from
the step's noise generator for the global batch, as `uniform` draws, so that a resumed run, one
in micro-batches and one over several processes transform every sample alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtgan.nets import MultiGAN
from mtgan.nets.routing import to_discriminators
from mtgan.objectives.augment import Augment


class StepContext:
    """real: (K, B, *shape) task batches and their class labels (K, B) (−1: unlabelled);
    z: (NG, B, z_dim) one noise batch per generator; fake_labels (NG, B): the classes a
    conditional model is asked for (None otherwise); augment: loss.augment's transforms."""

    def __init__(
        self,
        model: MultiGAN,
        real: Tensor,
        z: Tensor,
        step: int,
        noise: torch.Generator,
        real_labels: Tensor | None = None,
        fake_labels: Tensor | None = None,
        rank: int = 0,
        world: int = 1,
        augment: Augment | None = None,
    ):
        self.model, self.real, self.z, self.step, self.noise = model, real, z, step, noise
        self.rank, self.world, self.augment = rank, world, augment
        self._fake: Tensor | None = None
        self._cache: dict[str, dict[str, Tensor]] = {}
        self._observed = False  # D(real) handed to loss.augment's strength this step
        tasks = list(range(real.shape[0]))
        self.real_d = to_discriminators(real, tasks, model.discriminator_tasks)
        self.real_labels_d = (
            None
            if real_labels is None
            else to_discriminators(real_labels, tasks, model.discriminator_tasks)
        )
        self.fake_labels = fake_labels

    @property
    def fake(self) -> Tensor:
        """G(z): (NG, B, *shape), computed on first use and kept for the whole step."""
        if self._fake is None:
            self._fake = self.model.generate(self.z, self.fake_labels)
        return self._fake

    @property
    def fake_labels_d(self) -> Tensor:
        """The class each sample of `fake_d` was generated for: (ND, n) int64."""
        if self.fake_labels is None:
            raise ValueError("this model is not conditional: its fakes have no class labels")
        m = self.model
        return to_discriminators(self.fake_labels, m.generator_tasks, m.discriminator_tasks)

    @property
    def fake_d(self) -> Tensor:
        """The fakes as the discriminators see them: (ND, n, *shape)."""
        m = self.model
        return to_discriminators(self.fake, m.generator_tasks, m.discriminator_tasks)

    @property
    def fake_owner(self) -> Tensor:
        """Which generator made each sample of `fake_d`: (ND, n) int64."""
        m = self.model
        ng, b = self.z.shape[:2]
        owner = torch.arange(ng, device=self.z.device)[:, None].expand(ng, b)
        return to_discriminators(owner, m.generator_tasks, m.discriminator_tasks)

    def uniform(self, shape: tuple[int, ...]) -> Tensor:
        """U[0, 1) draws for this process's samples, shape (ND, n, ...): drawn for the global
        batch (ND, n·world, ...) and this rank's columns kept, so that a run on several
        processes draws the numbers a single process would (each rank's samples of a
        discriminator are a contiguous part of that discriminator's global batch)."""
        nd, n = shape[:2]
        full = torch.rand(
            (nd, n * self.world, *shape[2:]), generator=self.noise, device=self.z.device
        )
        return full[:, self.rank * n : (self.rank + 1) * n]

    def augmented(self, x: Tensor, fakes: bool = False) -> Tensor:
        """x (ND, n, C, H, W) as the discriminators see it: loss.augment's random transforms,
        drawn afresh at each call, one set per sample, differentiable w.r.t. x; x itself
        without loss.augment. x's columns lie as real_d's, or with `fakes` as fake_d's."""
        if self.augment is None:
            return x
        shape = (*x.shape[:2], self.augment.draws)
        return self.augment(x, self._draws(shape, self._pooled if fakes else 1))

    @property
    def _pooled(self) -> int:
        """Generators whose fakes each discriminator pools (MGAN): fake_d's columns are that
        many blocks, one per generator, each a contiguous part of its generator's batch."""
        return max(self.model.num_generators // self.model.num_discriminators, 1)

    def _draws(self, shape: tuple[int, ...], blocks: int) -> Tensor:
        """`uniform` for columns that are `blocks` equal consecutive blocks, each on every
        process its share of that block of the global batch (on one process: `uniform`)."""
        if blocks == 1 or self.world == 1:
            return self.uniform(shape)
        nd, n = shape[:2]
        per = n // blocks
        full = torch.rand(
            (nd, blocks, per * self.world, *shape[2:]), generator=self.noise, device=self.z.device
        )
        return full[:, :, self.rank * per : (self.rank + 1) * per].reshape(shape)

    def invalidate(self) -> None:
        """Forget discriminator outputs: called after the discriminator's weights changed."""
        self._cache.clear()

    def release(self) -> None:
        """Forget the fakes too, with their graph: a later phase generates them again from the
        same z (train.accumulate: one micro-batch's graph alive at a time)."""
        self._fake = None
        self._cache.clear()

    def _real_and_fake_detached(self) -> None:
        # One discriminator pass over real and (detached) fake samples together.
        b = self.real_d.shape[1]
        real, fake = self.augmented(self.real_d), self.augmented(self.fake_d.detach(), fakes=True)
        both = self.model.discriminate_all(torch.cat([real, fake], dim=1))
        self._cache["real"] = {k: v[:, :b] for k, v in both.items()}
        if self.augment is not None and not self._observed:  # ADA's signal: once a step
            self.augment.observe(self._cache["real"]["adv"])
            self._observed = True
        self._cache["fake_detached"] = {k: v[:, b:] for k, v in both.items()}

    def outputs(self, which: str) -> dict[str, Tensor]:
        """Discriminator outputs on "real", "fake_detached" (the D phase: fakes are constants)
        or "fake" (the G phase: differentiable w.r.t. the generators)."""
        if which not in self._cache:
            if which == "fake":
                seen = self.augmented(self.fake_d, fakes=True)
                self._cache["fake"] = self.model.discriminate_all(seen)
            else:
                self._real_and_fake_detached()
        return self._cache[which]

    def disc_real(self) -> Tensor:
        """D(real): (ND, b) logits."""
        return self.outputs("real")["adv"]

    def disc_fake_detached(self) -> Tensor:
        """D(G(z)) with the fakes treated as constants: (ND, n) logits."""
        return self.outputs("fake_detached")["adv"]

    def disc_fake(self) -> Tensor:
        """D(G(z)) differentiable w.r.t. the generators: (ND, n) logits."""
        return self.outputs("fake")["adv"]
