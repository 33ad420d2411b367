"""The paper's CIFAR-100 top-1 accuracies (Shrivastava et al., CVPR-W 2023, Tables 1-3), transcribed by hand.

These are accuracies only: the paper's Figure 1 latencies were taken on another CPU (Intel Xeon Gold
5218) and are not given as numbers, so nothing here is a latency. The report places these
accuracies at *our* measured latency of the same student architecture, and says so.
"""

from __future__ import annotations

# (teacher, student in our zoo, student baseline, KD, CRD, MIMKD)
PAPER_CIFAR100: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("resnet50", "shufflenetv2", 69.85, 72.91, 73.65, 74.55),
    ("vgg13", "shufflenetv1", 70.51, 72.26, 72.86, 73.88),
    ("vgg13", "mobilenetv2", 61.11, 64.47, 66.34, 65.89),
    ("resnet32x4", "vgg8", 69.67, 73.46, 73.73, 74.09),
    ("resnet32x4", "wrn_16_2", 72.80, 74.63, 75.61, 76.24),
    ("resnet110", "wrn_16_1", 67.01, 68.86, 69.71, 69.88),
    ("resnet32x4", "resnet8x4", 72.44, 73.21, 75.21, 75.83),
    ("wrn_40_2", "wrn_16_2", 72.80, 73.91, 74.17, 75.16),
    ("wrn_40_2", "wrn_16_1", 67.01, 68.24, 69.21, 70.20),
    ("resnet110", "resnet20", 69.10, 70.32, 71.45, 71.43),
    ("resnet56", "resnet20", 69.10, 70.59, 71.12, 71.31),
    ("resnet110", "resnet8", 59.63, 61.01, 60.82, 61.81),
    ("vgg19", "vgg8", 69.67, 72.29, 73.10, 73.27),
    ("resnet32x4", "conv4_mp", 66.09, 68.04, 68.52, 69.09),
    ("vgg13", "conv4_mp", 66.09, 67.84, 68.06, 68.91),
    ("resnet110", "conv4_mp", 66.09, 67.51, 67.96, 68.77),
    ("resnet32x4", "conv4", 59.97, 62.87, 63.76, 64.32),
    ("vgg13", "conv4", 59.97, 62.10, 62.54, 62.95),
    ("resnet110", "conv4", 59.97, 61.98, 62.13, 62.91),
)

PAPER_METHODS = ("none", "kd", "crd", "mimkd")


def paper_rows(student: str) -> list[dict]:
    """Every row of the paper's tables with `student` as the student."""
    keys = ("teacher", "student") + PAPER_METHODS
    return [dict(zip(keys, row, strict=True)) for row in PAPER_CIFAR100 if row[1] == student]


def paper_best(student: str) -> dict[str, tuple[float, str | None]]:
    """Per method: the paper's best CIFAR-100 top-1 for `student` over the teachers it reports, and
    that teacher (None for the no-distillation baseline, which has no teacher)."""
    rows = paper_rows(student)
    if not rows:
        return {}
    out: dict[str, tuple[float, str | None]] = {"none": (rows[0]["none"], None)}
    for method in PAPER_METHODS[1:]:
        best = max(rows, key=lambda r: r[method])
        out[method] = (best[method], best["teacher"])
    return out
