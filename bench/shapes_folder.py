"""Draw a small non-CIFAR image folder: 28×28 gray shapes in 10 classes (an MNIST-like task with
no download), for checks that need real-looking data other than CIFAR (INT8 accuracy, geometry).

    python -m bench.shapes_folder OUT [--train 600] [--test 100] [--seed 0]

Each image: one shape of its class (ellipse, rectangle, triangle, cross, ring, bar —, bar |,
diagonal, two dots, chevron), random size, position, stroke and gray levels, plus pixel noise.
OUT/train/<class>/*.png and OUT/test/<class>/*.png; deterministic for a seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("ellipse", "rectangle", "triangle", "cross", "ring", "hbar", "vbar", "diagonal", "dots", "chevron")
SIZE = 28


def draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    bg = int(rng.integers(0, 140))
    fg = min(255, bg + int(rng.integers(35, 110)))  # low contrast, under heavy noise: not a solved task
    im = Image.new("L", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(im)
    r = int(rng.integers(4, 11))
    cx, cy = (int(v) for v in rng.integers(r + 1, SIZE - r - 1, 2))
    w = int(rng.integers(2, 4))
    box = (cx - r, cy - r, cx + r, cy + r)
    if kind == "ellipse":
        d.ellipse((cx - r, cy - r // 2, cx + r, cy + r // 2), fill=fg)
    elif kind == "rectangle":
        d.rectangle(box, fill=fg)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif kind == "ring":
        d.ellipse(box, outline=fg, width=w)
    elif kind == "dots":
        q = max(2, r // 3)
        for x in (cx - r + q, cx + r - q):
            d.ellipse((x - q, cy - q, x + q, cy + q), fill=fg)
    else:
        _draw_strokes(d, kind, cx, cy, r, w, fg)
    pixels = np.asarray(im, dtype=np.float32) + rng.normal(0, 45, (SIZE, SIZE))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _draw_strokes(d: ImageDraw.ImageDraw, kind: str, cx: int, cy: int, r: int, w: int, fg: int) -> None:
    """The shapes drawn as lines, apart from `draw` to keep that under the complexity limit (no random draws here)."""
    if kind == "cross":
        d.line((cx - r, cy, cx + r, cy), fill=fg, width=w)
        d.line((cx, cy - r, cx, cy + r), fill=fg, width=w)
    elif kind == "hbar":
        d.line((cx - r, cy, cx + r, cy), fill=fg, width=w + 1)
    elif kind == "vbar":
        d.line((cx, cy - r, cx, cy + r), fill=fg, width=w + 1)
    elif kind == "diagonal":
        d.line((cx - r, cy + r, cx + r, cy - r), fill=fg, width=w + 1)
    elif kind == "chevron":
        d.line([(cx - r, cy + r // 2), (cx, cy - r // 2), (cx + r, cy + r // 2)], fill=fg, width=w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=600, help="images per class in train/")
    ap.add_argument("--test", type=int, default=100, help="images per class in test/")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for split, n in (("train", args.train), ("test", args.test)):
        for kind in CLASSES:
            folder = args.out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(draw(kind, rng), "L").save(folder / f"{i:05d}.png")
    print(f"wrote {args.out}: {len(CLASSES)} classes, {args.train} train and {args.test} test images each")


if __name__ == "__main__":
    main()
