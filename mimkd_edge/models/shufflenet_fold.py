"""ShuffleNetV2's export form: the channel shuffle folded into the convolutions (ShuffleNetV2.export_form).

Channel-shuffle folding ("fold-channel-shuffle"). In the stock graph every block concatenates its
untouched half with its branch output and shuffles the result (reshape → transpose → reshape), and the
next block slices that tensor in two: per block about 3 full copies of the activation and 5
data-movement nodes, 23 % of onnxruntime's kernel time at batch 1 (bench/results/latency.md) for 0 % of
the MACs. A channel permutation commutes with everything per-channel (BatchNorm, ReLU, depthwise convs)
and is absorbed by the 1×1 convolution that consumes the channels (permute its input columns). Tracking
every channel at export time therefore tells, for each channel, which later convolution reads it
first; each producing convolution writes its rows grouped by that consumer (its rows are permuted,
then split once), and each consumer concatenates exactly the pieces it reads. Channels that a block
passes through untouched are never copied; what remains per block is one split of the branch
output and one concatenation of the branch input (half the channels each). BatchNorm is folded into
the convolutions on the way (float64 arithmetic, rounded to float32 once).

Branch-width alignment ("align-branch-width", with the fold). onnxruntime runs a convolution in its
blocked NCHWc layout only for some channel counts: the stage-1 branches of ShuffleNetV2 1× (58
channels) ran in plain NCHW, their depthwise convs among the slowest kernels per MAC, while the
116-channel ones were padded to 120 by onnxruntime itself. Each 1×1 → depthwise → 1×1 chain gets its
inner width padded to a multiple of BRANCH_ALIGN with channels whose weights and biases are zero
(ReLU(0) = 0, and the last conv reads them with zero columns): the same function, up to 10 % more MACs
in those convs (58 → 64), and onnxruntime keeps the whole chain blocked (bench/results/latency.md
measures it).

Not kept: widening every piece to the NCHWc block and computing each by its own conv (no Split)
keeps onnxruntime's whole graph blocked (no reorders), but costs +15 % MACs and 2.4× the convolutions
for ShuffleNetV2 1×, and ran slower on both runtimes (issue 19's note of 2026-12-01).

What cannot be absorbed: ShuffleNetV1's shuffle sits between two *grouped* 1×1 convolutions; folding
it into either would break their group structure (a dense conv with zero blocks: g× the MACs), so
V1 offers no export form and is exported as it is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from .shufflenet import ShuffleNetV2, ShuffleV2Block, ShuffleV2Down, channel_shuffle

BRANCH_ALIGN = 8  # onnxruntime's NCHWc block on the CPUs measured here (it padded 116 channels to 120 itself)


# --------------------------------------------------------------------------- conv + BN algebra
@dataclass
class _Conv:
    """A convolution with BatchNorm folded in, as float64 weight and bias, ready to be permuted."""

    weight: torch.Tensor  # (out, in / groups, k, k)
    bias: torch.Tensor
    stride: int
    padding: int
    depthwise: bool

    @classmethod
    def fold(cls, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _Conv:
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
        bias = bn.bias.double() - bn.running_mean.double() * scale
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        depthwise = conv.groups > 1
        if depthwise and conv.groups != conv.in_channels:
            raise ValueError("only dense and depthwise convolutions can be permuted")
        return cls(weight, bias, conv.stride[0], conv.padding[0], depthwise)

    def reads(self, order: list[int]) -> _Conv:
        """Input channels arrive in `order` (physical i holds logical order[i]): permute the columns,
        or for a depthwise conv the channels themselves (its output follows the same order)."""
        idx = torch.tensor(order)
        if self.depthwise:
            return _Conv(self.weight[idx], self.bias[idx], self.stride, self.padding, True)
        return _Conv(self.weight[:, idx], self.bias, self.stride, self.padding, False)

    def writes(self, order: list[int]) -> _Conv:
        """Output row i computes logical row order[i]."""
        idx = torch.tensor(order)
        return _Conv(self.weight[idx], self.bias[idx], self.stride, self.padding, self.depthwise)

    def module(self) -> nn.Conv2d:
        out_c, in_per_group, k, _ = self.weight.shape
        groups = out_c if self.depthwise else 1
        conv = nn.Conv2d(in_per_group * groups, out_c, k, self.stride, self.padding, groups=groups, bias=True)
        conv.weight.data.copy_(self.weight.float())
        conv.bias.data.copy_(self.bias.float())
        return conv


def _convs(seq: nn.Sequential) -> list[_Conv]:
    """The (conv, BN) pairs of a branch, folded, in order."""
    mods = list(seq)
    return [_Conv.fold(m, mods[i + 1]) for i, m in enumerate(mods) if isinstance(m, nn.Conv2d)]


def _shuffle(labels: list[int]) -> list[int]:
    """Where the model's own channel_shuffle(·, 2) moves each channel label (run on the labels, so
    the fold can never disagree with the model's definition)."""
    return channel_shuffle(torch.tensor(labels).view(1, -1, 1, 1), 2).flatten().tolist()


# --------------------------------------------------------------------------- the folded network
class _Step(nn.Module):
    """Reads the concatenation of named pieces (kept under `keep` when another step reads it too),
    runs a chain of convs (ReLU where the original has one), and writes its output split into
    named pieces."""

    def __init__(self, reads: list[str], convs: list[nn.Conv2d], relus: list[bool], writes: list[tuple[str, int]],
                 keep: str | None = None):
        super().__init__()
        self.reads, self.relus, self.writes, self.keep = reads, relus, writes, keep
        self.convs = nn.ModuleList(convs)

    def forward(self, env: dict[str, torch.Tensor]) -> None:
        x = env[self.reads[0]] if len(self.reads) == 1 else torch.cat([env[r] for r in self.reads], 1)
        if self.keep is not None:
            env[self.keep] = x
        for conv, relu in zip(self.convs, self.relus, strict=True):
            x = conv(x)
            if relu:
                x = torch.relu(x)
        if len(self.writes) == 1:
            env[self.writes[0][0]] = x
            return
        for (name, _), piece in zip(self.writes, torch.split(x, [n for _, n in self.writes], 1), strict=True):
            env[name] = piece


class FoldedShuffleNetV2(nn.Module):
    """ShuffleNetV2 without a single shuffle, slice of the untouched half, or BatchNorm; same logits."""

    def __init__(self, steps: list[_Step], pool: nn.Module, fc: nn.Linear, src: ShuffleNetV2):
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.pool, self.fc = pool, fc
        self.input_size = getattr(src, "input_size", 32)
        self.in_chans = getattr(src, "in_chans", 3)
        self.num_classes = fc.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {"input": x}
        for step in self.steps:
            step(env)
        return self.fc(torch.flatten(self.pool(env["head"]), 1))


@dataclass
class _Producer:
    """A conv chain whose output channels carry `labels` (logical order) before the rows are grouped."""

    name: str
    reads: str  # the consumer key whose materialised input it reads
    convs: list[_Conv]
    relus: list[bool]
    labels: list[int]


@torch.no_grad()
def fold_channel_shuffle(model: ShuffleNetV2, align: int = 1) -> FoldedShuffleNetV2:
    """The folded network (module docstring), with branch widths padded to a multiple of `align`
    (1: none). BN is folded with its running statistics, as in every export."""
    fresh = itertools.count()
    new = lambda n: [next(fresh) for _ in range(n)]  # noqa: E731 - labels for n new channels
    producers: list[_Producer] = []
    needs: dict[str, list[int]] = {}  # consumer key → the labels it reads, in its logical order
    order: list[str] = []  # consumers in execution order

    def consume(key: str, labels: list[int]) -> None:
        needs[key] = labels
        order.append(key)

    stem = _convs(model.stem)
    producers.append(_Producer("stem", "input", stem, [True], new(stem[0].weight.shape[0])))
    logical = producers[-1].labels
    for name in model.stage_names:
        for j, block in enumerate(getattr(model, name)):
            key = f"{name}.{j}"
            if isinstance(block, ShuffleV2Down):
                consume(key, logical)
                left, right = _convs(block.left), _convs(block.right)
                producers.append(_Producer(f"{key}.left", key, left, [False, True], new(left[-1].weight.shape[0])))
                producers.append(_Producer(f"{key}.right", key, right, [True, False, True],
                                           new(right[-1].weight.shape[0])))
                logical = _shuffle(producers[-2].labels + producers[-1].labels)
            elif isinstance(block, ShuffleV2Block):
                consume(key, logical[block.half:])
                branch = _convs(block.branch)
                producers.append(_Producer(key, key, branch, [True, False, True], new(branch[-1].weight.shape[0])))
                logical = _shuffle(logical[: block.half] + producers[-1].labels)
            else:
                raise TypeError(f"fold_channel_shuffle: unexpected block {type(block).__name__} in {name}")
    consume("head", logical)
    return _assemble(model, producers, needs, order, align)


def _assemble(model: ShuffleNetV2, producers: list[_Producer], needs: dict[str, list[int]],
              order: list[str], align: int) -> FoldedShuffleNetV2:
    consumer_of = {label: key for key, labels in needs.items() for label in labels}
    rank = {key: i for i, key in enumerate(order)}
    pieces: dict[str, list[tuple[str, list[int]]]] = {key: [] for key in order}  # consumer → (piece, labels)
    writes: dict[str, list[tuple[str, int]]] = {}
    row_order: dict[str, list[int]] = {}
    for p in producers:
        by_consumer: dict[str, list[int]] = {}
        for row, label in enumerate(p.labels):
            by_consumer.setdefault(consumer_of[label], []).append(row)
        groups = sorted(by_consumer.items(), key=lambda kv: rank[kv[0]])
        row_order[p.name] = [row for _, rows in groups for row in rows]
        writes[p.name] = []
        for key, rows in groups:
            piece = f"{p.name}>{key}"
            writes[p.name].append((piece, len(rows)))
            pieces[key].append((piece, [p.labels[r] for r in rows]))

    def materialised(key: str) -> tuple[list[str], list[int]]:
        """The pieces consumer `key` concatenates, and the logical position of each physical channel."""
        position = {label: i for i, label in enumerate(needs[key])}
        phys = [label for _, labels in pieces[key] for label in labels]
        assert sorted(position[label] for label in phys) == list(range(len(position)))
        return [name for name, _ in pieces[key]], [position[label] for label in phys]

    steps, kept = [], set()
    for p in producers:
        keep = None
        if p.reads == "input":
            reads, positions = ["input"], list(range(p.convs[0].weight.shape[1]))
        else:
            reads, positions = materialised(p.reads)
            if p.reads in kept:  # a downsampling block's second branch: the first one kept the concatenation
                reads = [p.reads]
            elif len(reads) > 1:
                keep = p.reads
                kept.add(keep)
        convs = _aligned(_permuted(p.convs, positions, row_order[p.name]), align)
        steps.append(_Step(reads, [c.module() for c in convs], p.relus, writes[p.name], keep))
    reads, positions = materialised("head")
    head = _permuted(_convs(model.head), positions, None)
    steps.append(_Step(reads, [c.module() for c in head], [True], [("head", head[-1].weight.shape[0])]))
    return FoldedShuffleNetV2(steps, model.pool, model.fc, model).eval()


def _permuted(convs: list[_Conv], positions: list[int], rows: list[int] | None) -> list[_Conv]:
    """A chain whose input arrives in `positions` order and whose last conv writes `rows` order.
    A leading depthwise conv keeps that order on its output, so the next conv reads it too."""
    out, order = [], positions
    for i, original in enumerate(convs):
        conv = original.reads(order) if order is not None else original
        order = order if conv.depthwise else None
        if i == len(convs) - 1 and rows is not None:
            conv = conv.writes(rows)
        out.append(conv)
    return out


def _aligned(convs: list[_Conv], align: int) -> list[_Conv]:
    """A dense 1×1 → depthwise → dense chain with its inner width padded to a multiple of `align`
    by zero channels (zero rows and bias in the first conv and the depthwise one, zero columns in the
    last); any other chain is returned as it is."""
    if len(convs) != 3 or convs[0].depthwise or not convs[1].depthwise or convs[2].depthwise:
        return convs
    first, dw, last = convs
    pad = -first.weight.shape[0] % align
    if pad == 0:
        return convs

    def grow(t: torch.Tensor, dim: int) -> torch.Tensor:
        shape = list(t.shape)
        shape[dim] = pad
        return torch.cat([t, t.new_zeros(shape)], dim)

    return [_Conv(grow(first.weight, 0), grow(first.bias, 0), first.stride, first.padding, False),
            _Conv(grow(dw.weight, 0), grow(dw.bias, 0), dw.stride, dw.padding, True),
            _Conv(grow(last.weight, 1), last.bias, last.stride, last.padding, False)]
