"""MIMKD: CE (+ KD) plus three mutual-information terms between teacher and student (eqs. 1–7).

    L = α·CE + (1−α)·KD + λg·(−I_global) + λl·(−I_local) + λf·(−I_feature)

- global (eq. 3): MI between the pre-classifier vectors f_t(x), f_s(x). infoNCE bound (default)
  with K negatives from a memory, or the JSD bound with in-batch negatives.
- local (eq. 4): JSD bound between f_t(x), broadcast to every location, and each location of the
  student's deepest map in R; averaged over locations.
- feature (eq. 5): for each pair k of R, JSD bound between the teacher's and student's vectors at
  the same location; one critic per pair; averaged over locations, then pairs.

JSD negatives: the same location with another image's teacher features — one per positive by
default (the batch rolled by one), or every other image of the batch ("all", Deep InfoMax's way).

Global infoNCE (eq. 1 applied to eq. 3): each student vector is the anchor; its positive is the
teacher vector of the same image, its K negatives teacher vectors of other training images. All
K + 1 teacher vectors go through the *current* critic — project: both sides projected (Table 8),
L2-normalised, scored ⟨p_t, p_s⟩ / τ; convolve: the critic on every (teacher, student) pair.
The negatives come from a `TeacherMemory` of raw teacher vectors (a row per sample, or a queue),
written after scoring, K rows drawn per step and shared by the batch.

Why raw teacher vectors, and not CRD's memory of projected embeddings: infoNCE is a lower bound
only when the negatives are drawn from the same distribution as the positive's partner. A memory
of embeddings written at earlier steps holds rows of an older projection (and blended by
momentum), while the positive is scored from the current one: a critic can raise the "bound" by
telling fresh from stale instead of learning the dependence. Measured on correlated Gaussians
(4 + 4 dims, true MI 3.32 nats at ρ = 0.9): that design read 4.56 nats — above the truth — and
its critic re-scored with fresh negatives read 0.13 (and 3.6 where the truth is 0). This design
reads 3.0 and 0.0, the same as with fresh negatives. The teacher is frozen, so its raw vector of a
sample never goes stale: projected through today's head, a stored row is exactly a fresh negative.
The price is projecting K rows per step (one (K, C_t) pass, ~0.4 GFLOP for a 64-d teacher at
width 512) instead of reading K projected rows; the student-anchored direction alone is kept
(the student changes, so a memory of student embeddings would be stale again).
`tests/methods/test_mi_estimators.py` checks the bound against the true MI.

Every critic sees the teacher's vector and maps standardised per channel (`standardize.py`): the
same MI, but no divergence when a teacher's activations are large.

What a step costs, and the two levers (issue 17; `bench/results/train_step.md`). At the paper's
width the local and feature critics run a 512×512 layer at every location of every paired map, twice
(positive, negative): 5.4× a KD step for ResNet-56 → Conv-4-MP on a 2-core CPU, and the time ratio
follows the FLOP ratio (the critic matmuls run at about what a bare matmul of their shape reaches),
so only doing less helps. `locations = L` scores L random locations per image and map
(`critics.sample_locations`): an unbiased estimate of eqs. 4–5 and of their gradient at L/(H·W) of
the critic work; 0 (default) is the paper's exact computation, bit for bit. `location_sampling =
"stratified"` draws one location in each of L equal tiles instead: as unbiased, less noisy
(neighbours are never drawn together). `feature_locations` gives the feature term its own L (the
local term keeps `locations`): at L = 32 its sampled runs ended ~0.003 below the exact runs' feature
bound where the local bound had no gap. Sampling does not touch the global term, whose projection
of K = 4096 raw teacher rows per step is 1.2× KD alone on the Conv-4-MP pair. `critic_precision =
"bf16"` runs every critic (the global one's projections too, unless `global_critic_precision =
"fp32"`) under CPU autocast: the bounds take their scores in fp32, and the project-dot infoNCE
computes its dot products in fp32, but a convolve critic's scores come out of a bf16 layer. Where
the CPU lacks native bf16 it is emulated and far slower, so "auto" enables it only on AVX-512 BF16 /
AMX parts. Trained in bf16, the global critic ended its bound ~0.03 nats below fp32 training's on
every seed, while bf16 saved it 3–7 ms a step (a KD step: 130–160 ms): `global_critic_precision =
"fp32"` keeps it out of the autocast (issue 17's recommended CPU path). Under DDP every rank seeds
the global generator alike, so ranks draw the same location pattern (for different images): still
unbiased. The global term's negatives, by contrast, come from a generator per rank (`memory.seed_draws`):
the ranks score different rows of the memory, K × world negatives per step rather than one set K times.

Estimates (`mi_*`) are the bound values themselves, detached: infoNCE in nats, at most log(K+1)
(≈ 8.32 for K = 4096); JSD ≤ 0, its best value 2·JSD(joint ‖ marginals) − log 4, so −1.386
means "no better than independent" and values towards 0 mean the critic tells pairs apart well.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..cpuinfo import torch_native_bf16
from ..models.features import Features
from ..schema import param
from .bounds import infonce_lower_bound, jsd_lower_bound
from .critics import ConvolveCritic, ProjectDotCritic, make_critic, sample_locations
from .dkd import weighted_dkd_terms
from .kd import ce_kd_terms
from .logits import DKD_WARMUP, WarmupRamp, logit_defaults
from .memory import TeacherMemory
from .pairing import require_pairs, resolve_pairs
from .registry import DistillMethod, MethodContext, MethodOutput, register_method
from .standardize import RunningStandardizer


def _need_teacher_shapes(ctx: MethodContext, method: str) -> None:
    if not ctx.teacher_maps or ctx.teacher_dim <= 0:
        raise ValueError(f"{method}: the method context has no teacher shapes (teacher_maps, teacher_dim)")


@register_method("mimkd")
class MIMKD(DistillMethod):
    """Mutual Information Maximisation KD (Shrivastava et al., CVPR-W 2023), CIFAR defaults."""

    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float | None = param(None, gt=0, help="of the logit term: 4 (KD + LS: 2)")
        logit_term: Literal["kd", "dkd"] = param(
            "kd", help="our extension (the paper's MIMKD has none: alpha = 1 leaves plain KD out): kd: weight "
                       "1 - alpha, or logit_weight; dkd: DKD with its reference weights, CE weight alpha")
        logit_standardize: bool = param(False, help="logit standardisation (Sun et al. 2024) in the logit term")
        logit_weight: float | None = param(None, ge=0, help="KD's weight (default 1 - alpha; 9 with LS) or "
                                                            "DKD's TCKD weight (default 1; 9 with LS)")
        dkd_beta: float | None = param(None, ge=0, help="DKD's NCKD weight (default 8; 81 with LS)")
        logit_warmup: float = param(DKD_WARMUP, ge=0, le=1, help="DKD's ramp-in, a fraction of the schedule")
        lambda_global: float = param(1.0, ge=0, help="weight of the global MI term (eq. 3)")
        lambda_local: float = param(0.75, ge=0, help="weight of the local MI term (eq. 4)")
        lambda_feature: float = param(1.0, ge=0, help="weight of the feature MI term (eq. 5)")
        global_bound: Literal["infonce", "jsd"] = param("infonce", help="bound of the global term")
        global_critic: Literal["project", "convolve"] = param("project")
        local_critic: Literal["convolve", "project"] = param("convolve")
        feature_critic: Literal["convolve", "project"] = param("convolve")
        negatives: Literal["derangement", "all"] = param(
            "derangement", help="JSD negatives: one per positive (batch rolled by 1) or every other image")
        nce_k: int = param(4096, ge=1, help="infoNCE negatives, drawn each step and shared by the batch "
                                            "(the queue's size for memory='queue')")
        nce_t: float = param(0.07, gt=0, help="infoNCE temperature")
        embed_dim: int = param(128, ge=1, help="output size of the project-and-dot projections")
        memory: Literal["bank", "queue"] = param(
            "bank", help="raw teacher vectors for the negatives: bank, the latest per sample (needs indices); "
                         "queue, the nce_k most recent")
        pairs: tuple[tuple[int, int], ...] | None = param(
            None, help="R as (teacher map index, student map index) pairs; none: pair equal spatial sizes")
        critic_hidden: int = param(512, ge=1, help="hidden width of every critic")
        locations: int = param(
            0, ge=0, help="local and feature terms: score L random locations per image and map each step "
                          "(an unbiased estimate of the mean over H×W and of its gradient); 0: every "
                          "location, the paper's exact computation")
        feature_locations: int | None = param(
            None, ge=0, help="the feature term's L alone (same meaning as locations); none: as locations")
        location_sampling: Literal["uniform", "stratified"] = param(
            "uniform", help="how the L locations are drawn: uniform, anywhere on the map; stratified, one in "
                            "each of L equal tiles (same chance for every location, less variance; maps that "
                            "cannot be cut into L equal tiles are drawn uniformly)")
        critic_precision: Literal["fp32", "bf16", "auto"] = param(
            "fp32", help="what the critics compute in on CPU: bf16 runs their matmuls under autocast (the "
                         "bounds stay fp32); auto: bf16 where the CPU has native bf16 (AVX-512 BF16, AMX), "
                         "else fp32. A trainer-wide autocast (train.precision, and on CUDA) still applies")
        global_critic_precision: Literal["same", "fp32"] = param(
            "same", help="the global critic on CPU: same, as critic_precision says; fp32, fp32 even where the "
                         "local and feature critics run bf16 (bf16 saves it little time and lowers its bound)")
        standardize_teacher: bool = param(
            True, help="critics see each teacher channel standardised by running statistics (an invertible "
                       "per-channel map: same MI, no divergence with large teacher activations); false: raw")

        def __post_init__(self):
            d = logit_defaults(self.logit_term, self.logit_standardize, self.alpha)
            for key, value in (("temperature", d.temperature), ("logit_weight", d.weight), ("dkd_beta", d.beta)):
                if getattr(self, key) is None:
                    object.__setattr__(self, key, value)

        @property
        def feature_term_locations(self) -> int:
            """L of the feature term: `feature_locations` when set, else the local term's `locations`."""
            return self.locations if self.feature_locations is None else self.feature_locations

    needs_index = True  # with the defaults (global infoNCE, memory bank); see __init__

    def __init__(self, opts: MIMKD.Options, ctx: MethodContext):
        super().__init__(opts, ctx)
        _need_teacher_shapes(ctx, "mimkd")
        o = opts
        self.pairs = resolve_pairs(ctx.teacher_maps, ctx.student_maps, o.pairs)
        for weight, name in ((o.lambda_local, "lambda_local"), (o.lambda_feature, "lambda_feature")):
            if weight > 0:
                require_pairs(self.pairs, ctx.teacher_maps, ctx.student_maps, f"mimkd {name} = {weight:g} > 0")
        sampled = (o.lambda_local > 0 and o.locations) or (o.lambda_feature > 0 and o.feature_term_locations)
        if sampled and o.negatives != "derangement":
            raise ValueError(f"mimkd: sampled locations (locations = {o.locations}, feature_locations = "
                             f"{o.feature_locations}) take negatives = \"derangement\", got {o.negatives!r}")
        self.bf16_critics = o.critic_precision == "bf16" or (o.critic_precision == "auto" and torch_native_bf16())
        self.needs_index = o.lambda_global > 0 and o.global_bound == "infonce" and o.memory == "bank"
        # A DDP trainer may set this to a function that all-gathers a tensor across ranks: the
        # memory is then updated with every rank's embeddings and indices (identically everywhere).
        self.gather_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

        self.global_critic = self.memory = None
        if o.lambda_global > 0:
            self.global_critic = make_critic(o.global_critic, ctx.teacher_dim, ctx.student_dim,
                                             o.critic_hidden, o.embed_dim)
            if o.global_bound == "infonce":
                self.memory = TeacherMemory(o.memory, ctx.num_samples, o.nce_k, ctx.teacher_dim)

        self.local_critic = None
        self.local_map = max(s for _, s in self.pairs) if self.pairs else -1
        if o.lambda_local > 0:
            c_s = ctx.student_maps[self.local_map][0]
            self.local_critic = make_critic(o.local_critic, ctx.teacher_dim, c_s, o.critic_hidden, o.embed_dim)

        self.feature_critics = nn.ModuleList()
        if o.lambda_feature > 0:
            for ti, si in self.pairs:
                self.feature_critics.append(make_critic(o.feature_critic, ctx.teacher_maps[ti][0],
                                                        ctx.student_maps[si][0], o.critic_hidden, o.embed_dim))

        self.logit_ramp = WarmupRamp(o.logit_warmup, ctx.total_steps) if o.logit_term == "dkd" else None

        # What the critics see of the teacher (standardize.py): the vector (global, local) and each map of R.
        std = o.standardize_teacher
        uses_vector = o.lambda_global > 0 or o.lambda_local > 0
        self.vector_std = RunningStandardizer(ctx.teacher_dim) if std and uses_vector else None
        self.map_std = nn.ModuleList(RunningStandardizer(ctx.teacher_maps[ti][0]) for ti, _ in self.pairs) \
            if std and o.lambda_feature > 0 else None

    # -- the three terms ---------------------------------------------------------------------------
    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        if teacher is None:
            raise ValueError("mimkd: needs the teacher's features")
        self._require_index(index)  # before anything is written to the memory or the statistics
        teacher = teacher.detach()
        terms = self._logit_terms(student, teacher, labels)
        estimates = {}
        t_vec = teacher.vector
        if self.vector_std is not None and self.training:
            self.vector_std.observe(t_vec, self.gather_fn)
        if o.lambda_global > 0:
            with self._critic_autocast(t_vec.device, self.bf16_global):
                bound = self.global_bound(t_vec, student.vector, index)
            terms["global"] = -o.lambda_global * bound
            estimates["mi_global"] = bound.detach()
        with self._critic_autocast(t_vec.device, self.bf16_critics):
            if o.lambda_local > 0:
                bound = self._jsd(self.local_critic, self._vector(t_vec), student.maps[self.local_map],
                                  o.locations)
                terms["local"] = -o.lambda_local * bound
                estimates["mi_local"] = bound.detach()
            if o.lambda_feature > 0:
                per_pair = self.feature_pair_bounds(student, teacher)
                bound = per_pair.mean()
                terms["feature"] = -o.lambda_feature * bound
                estimates["mi_feature"] = bound.detach()
                if len(self.pairs) > 1:  # each pair's own bound too: which paired map a change moves
                    estimates.update({f"mi_feature_{k}": v for k, v in enumerate(per_pair.detach())})
        return MethodOutput(terms, estimates)

    def _logit_terms(self, student, teacher, labels) -> dict[str, torch.Tensor]:
        """α·CE and the logit term the options name (none at the paper's defaults)."""
        o = self.opts
        if o.logit_term == "kd":
            return ce_kd_terms(student, teacher, labels, o.alpha, o.temperature, o.logit_weight, o.logit_standardize)
        terms = {"ce": o.alpha * F.cross_entropy(student.logits.float(), labels)} if o.alpha > 0 else {}
        terms.update(weighted_dkd_terms(student.logits, teacher.logits, labels, o.logit_weight, o.dkd_beta,
                                        o.temperature, o.logit_standardize, self.logit_ramp()))
        return terms

    def feature_pair_bounds(self, student: Features, teacher: Features, locations: int | None = None) -> torch.Tensor:
        """The feature term's JSD bound (eq. 5) of each pair of R on its own, shaped (len(pairs),): their mean
        is the term. Over `locations` random locations per image (None: the options' `feature_term_locations`;
        0: every one). `teacher` is not differentiated (forward hands it detached); in training mode its maps
        update the standardisers' statistics, as in forward. The critics run in the caller's precision
        (forward's autocast is not applied here). JSD negatives pair image i with image i−1's teacher
        (`bounds.derangement`, fixed): two calls on one batch score the same pairs."""
        count = self.opts.feature_term_locations if locations is None else locations
        pairs = enumerate(zip(self.feature_critics, self.pairs, strict=True))
        return torch.stack([self._jsd(critic, self._map(k, teacher.maps[ti]), student.maps[si], count)
                            for k, (critic, (ti, si)) in pairs])

    def _jsd(self, critic: nn.Module, t: torch.Tensor, s_map: torch.Tensor, count: int) -> torch.Tensor:
        """Eq. 2 between a teacher vector or map and a student map: over every location (`count` 0),
        or over `count` random ones per image (`critics.sample_locations`: unbiased, a fraction of the cost)."""
        n, _, h, w = s_map.shape
        idx = sample_locations(n, h, w, count, s_map.device,
                               stratified=self.opts.location_sampling == "stratified")
        return jsd_lower_bound(*critic.pair_scores(t, s_map, self.opts.negatives, locations=idx))

    @property
    def bf16_global(self) -> bool:
        """The global critic under bf16 autocast: it follows the other critics unless kept fp32."""
        return self.bf16_critics and self.opts.global_critic_precision == "same"

    @staticmethod
    def _critic_autocast(device: torch.device, bf16: bool):
        """bf16 autocast of critics on CPU when asked (`critic_precision`, `global_critic_precision`);
        the bounds cast their scores to fp32 (see the module docstring for what stays bf16)."""
        if bf16 and device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()  # not autocast(enabled=False): that would switch off a caller's autocast

    def _require_index(self, index: torch.Tensor | None) -> None:
        if self.needs_index and index is None:
            raise ValueError("mimkd: global infoNCE with memory 'bank' needs sample indices (index=None); "
                             "let the loader yield them or use memory = \"queue\"")

    def _vector(self, t_vec: torch.Tensor) -> torch.Tensor:
        return t_vec if self.vector_std is None else self.vector_std(t_vec)

    def _map(self, k: int, t_map: torch.Tensor) -> torch.Tensor:
        if self.map_std is None:
            return t_map
        if self.training:
            self.map_std[k].observe(t_map, self.gather_fn)
        return self.map_std[k](t_map)

    def global_bound(self, t_vec: torch.Tensor, s_vec: torch.Tensor,
                     index: torch.Tensor | None = None) -> torch.Tensor:
        """The bound of eq. 3 for a batch (and, in training mode, the memory update). `t_vec` is the
        teacher's raw vector: the memory stores raw vectors, and both go through `_vector` at use."""
        o = self.opts
        if o.global_bound == "jsd":
            return jsd_lower_bound(*self.global_critic.pair_scores(self._vector(t_vec), s_vec, o.negatives))
        self._require_index(index)
        critic, n = self.global_critic, s_vec.shape[0]
        rows = self.memory.get(self.memory.draw(index)).to(t_vec.dtype)  # (K, C_t) raw teacher vectors
        raw, t_vec, rows = t_vec, self._vector(t_vec), self._vector(rows)
        if isinstance(critic, ProjectDotCritic):
            p_s = F.normalize(critic.proj_s(s_vec).float(), dim=-1)
            p_t = F.normalize(critic.proj_t(torch.cat([t_vec, rows])).float(), dim=-1)  # one pass, K + N rows
            with torch.autocast(p_s.device.type, enabled=False):  # scores to ~14 (1/τ): bf16 would round them
                pos = (p_t[:n] * p_s).sum(-1) / o.nce_t
                if len(rows):
                    neg = p_s @ p_t[n:].t() / o.nce_t  # (N, K)
                else:  # (N, N−1): every other image of the batch
                    off = ~torch.eye(n, dtype=torch.bool, device=p_s.device)
                    neg = (p_s @ p_t.t())[off].view(n, n - 1) / o.nce_t
        else:
            assert isinstance(critic, ConvolveCritic)
            pos = critic(t_vec, s_vec)
            neg = critic.score_rows(rows if len(rows) else _others(t_vec), s_vec)
        if self.training:
            self._update_memory(raw, index)
        return infonce_lower_bound(pos, neg)

    def _update_memory(self, t_vec: torch.Tensor, index: torch.Tensor | None) -> None:
        """Store the batch's raw teacher vectors, after scoring (DDP: every rank's, so replicas agree)."""
        t_vec = t_vec.detach().float()
        if self.gather_fn is not None:
            t_vec = self.gather_fn(t_vec)
            index = self.gather_fn(index) if index is not None else None
        self.memory.update(t_vec, index)


def _others(x: torch.Tensor) -> torch.Tensor:
    """(N, D) → (N, N−1, D): for each image, the rows of the batch's other images. The negatives of
    the very first step, before the memory holds anything."""
    n = x.shape[0]
    if n < 2:
        raise ValueError("mimkd: the global infoNCE term needs a batch of at least 2 images on its first step")
    keep = ~torch.eye(n, dtype=torch.bool, device=x.device)
    return x.unsqueeze(0).expand(n, n, -1)[keep].view(n, n - 1, -1)
