"""The set R: which teacher map goes with which student map (the paper's appendix A.3).

Maps are paired by spatial size only, never by channel count. The rule that reproduces the
paper's Tables 4 and 5: walk both lists from the shallow end; equal sizes → pair them and advance
both; otherwise advance the list whose current map is larger (it cannot match anything further
along the other list, whose maps only get smaller). A recipe may list the pairs by index instead.
"""

from __future__ import annotations

from collections.abc import Sequence


Shape = tuple[int, int, int]  # (C, H, W)
Pair = tuple[int, int]  # (teacher map index, student map index)


class PairingError(ValueError):
    """The set R cannot be built as asked; str() is one line."""


def _show(shapes: Sequence[Shape]) -> str:
    return "[" + ", ".join(f"{c}@{h}" if h == w else f"{c}@{h}x{w}" for c, h, w in shapes) + "]"


def auto_pairs(teacher_maps: Sequence[Shape], student_maps: Sequence[Shape]) -> tuple[Pair, ...]:
    """R by the walking rule: pairs (teacher index, student index) of equal (H, W), shallow → deep."""
    pairs: list[Pair] = []
    i = j = 0
    while i < len(teacher_maps) and j < len(student_maps):
        t_hw, s_hw = tuple(teacher_maps[i][1:]), tuple(student_maps[j][1:])
        if t_hw == s_hw:
            pairs.append((i, j))
            i += 1
            j += 1
            continue
        t_area, s_area = t_hw[0] * t_hw[1], s_hw[0] * s_hw[1]
        if t_area > s_area:
            i += 1
        elif s_area > t_area:
            j += 1
        else:  # same area, different shape (non-square maps): neither can match the other
            i += 1
            j += 1
    return tuple(pairs)


def check_pairs(pairs: Sequence[Sequence[int]], teacher_maps: Sequence[Shape],
                student_maps: Sequence[Shape]) -> tuple[Pair, ...]:
    """Explicit pairs from a recipe: indices in range (negative ones count from the deep end) and
    equal spatial sizes. Returns them normalised to non-negative indices."""
    out: list[Pair] = []
    for k, pair in enumerate(pairs):
        if len(pair) != 2:
            raise PairingError(f"pairs[{k}]: expected [teacher_index, student_index], got {list(pair)}")
        ti, si = int(pair[0]), int(pair[1])
        for name, idx, maps in (("teacher", ti, teacher_maps), ("student", si, student_maps)):
            if not -len(maps) <= idx < len(maps):
                raise PairingError(f"pairs[{k}]: {name} map index {idx} out of range: the {name} has "
                                   f"{len(maps)} maps {_show(maps)}")
        ti, si = ti % len(teacher_maps), si % len(student_maps)
        t, s = teacher_maps[ti], student_maps[si]
        if tuple(t[1:]) != tuple(s[1:]):
            raise PairingError(f"pairs[{k}]: teacher map {ti} ({_show([t])[1:-1]}) and student map {si} "
                               f"({_show([s])[1:-1]}) differ in spatial size; R pairs equal sizes only")
        out.append((ti, si))
    return tuple(out)


def resolve_pairs(teacher_maps: Sequence[Shape], student_maps: Sequence[Shape],
                  pairs: Sequence[Sequence[int]] | None = None) -> tuple[Pair, ...]:
    """Explicit `pairs` (checked) when given, else the automatic rule."""
    teacher_maps = [tuple(m) for m in teacher_maps]
    student_maps = [tuple(m) for m in student_maps]
    if pairs is not None:
        return check_pairs(pairs, teacher_maps, student_maps)
    return auto_pairs(teacher_maps, student_maps)


def inner_pairs(teacher_maps: Sequence[Shape], student_maps: Sequence[Shape],
                pairs: Sequence[Sequence[int]] | None = None) -> tuple[Pair, ...]:
    """R without the shallowest map of either network: the walking rule on maps[1:] (indices into the
    full lists), unless `pairs` are given. The reference CIFAR code (RepDistiller) distils AT and VID
    on `feat[1:-1]` — its feature lists are [stem, stages..., pooled vector] — and their weights
    (β = 1000, β = 1) were tuned on those maps."""
    if pairs is not None:
        return resolve_pairs(teacher_maps, student_maps, pairs)
    return tuple((ti + 1, si + 1) for ti, si in resolve_pairs(teacher_maps[1:], student_maps[1:]))


def require_pairs(pairs: Sequence[Pair], teacher_maps: Sequence[Shape], student_maps: Sequence[Shape],
                  needed_by: str) -> None:
    """Raise a one-line `PairingError` when R is empty but `needed_by` (e.g. "lambda_local > 0") needs it."""
    if not pairs:
        raise PairingError(f"the set R is empty: no teacher map {_show(teacher_maps)} has the spatial size of a "
                           f"student map {_show(student_maps)}, but {needed_by} needs at least one pair; "
                           "set that weight to 0 or list pairs of equal-size maps explicitly")

