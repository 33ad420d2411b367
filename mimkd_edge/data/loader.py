"""Batches for training and evaluation, with the same order and augmentation on two data paths.

Resident (`BatchLoader`): the uint8 split lives where the model does; no DataLoader workers, no
per-image Python. Streamed (`StreamingLoader`): a split too large for memory is decoded batch by
batch in DataLoader workers into pinned memory. Both draw an epoch's order and augmentation from one
generator seeded by (seed, epoch) in the main process, and both crop, flip and normalise on the
device in one batched op — so the two paths yield the same batches, and a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np
import torch

from .datasets import ImageSet
from ..imaging import decode_images

Augmentation = tuple[torch.Tensor, ...]  # (dy, dx, flip[, cy, cx]), one entry per image


class Loader:
    """What both data paths share: the epoch plan (order, rank shard, augmentation) and the transform."""

    def __init__(self, data: ImageSet, batch_size: int, mean, std, *, train: bool, augment: bool = True,
                 seed: int = 0, device: torch.device | str = "cpu", padding: int = 4,
                 rank: int = 0, world_size: int = 1, channels_last: bool = False, cutout: int = 0,
                 flip: bool = True):
        self.data = data
        self.device = torch.device(device)
        self.num_samples = len(data)
        self.batch_size = batch_size  # global batch: each of `world_size` ranks takes its share
        self.train, self.seed, self.padding, self.flip = train, seed, padding, flip
        self.augment = augment and train and bool(padding or flip or cutout)
        self.rank, self.world_size = rank, world_size
        self.channels_last = channels_last
        self.cutout = cutout if self.augment else 0
        self.image_hw = tuple(data.images.shape[-2:]) if data.resident else (data.size, data.size)
        shape = (1, -1, 1, 1)  # one value per channel
        self.mean = torch.tensor(mean, device=self.device).view(shape) * 255
        self.inv_std = 1.0 / (torch.tensor(std, device=self.device).view(shape) * 255)

    def __len__(self) -> int:
        n, b = self.num_samples, self.batch_size
        steps, rem = -(-n // b), n % b
        # A trailing batch of one per rank breaks BatchNorm and negative sampling: drop it when training.
        if self.train and 0 < rem < 2 * self.world_size and steps > 1:
            steps -= 1
        return steps

    def plan(self, epoch: int) -> Iterator[tuple[torch.Tensor, Augmentation | None]]:
        """This rank's (sample indices, augmentation) for every step of `epoch`, on the CPU."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(self.num_samples, generator=g) if self.train else torch.arange(self.num_samples)
        per_rank = self.batch_size // self.world_size
        for step in range(len(self)):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            if self.world_size > 1:
                idx = idx[self.rank * per_rank:(self.rank + 1) * per_rank] if len(idx) == self.batch_size \
                    else idx[self.rank::self.world_size]
            yield idx, (self._draw_augmentation(len(idx), g) if self.augment else None)

    def _draw_augmentation(self, b: int, g: torch.Generator) -> Augmentation:
        # torchvision's RandomCrop(padding=p) + RandomHorizontalFlip: offsets uniform on 0..2p, flip p=0.5
        # (p = 0: no crop; self.flip False: no flip)
        p = self.padding
        dy = torch.randint(0, 2 * p + 1, (b,), generator=g)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=g)
        flip = (torch.rand(b, generator=g) < 0.5) & self.flip  # drawn either way: one stream for every option
        if not self.cutout:
            return dy, dx, flip
        h, w = self.image_hw
        return dy, dx, flip, torch.randint(0, h, (b,), generator=g), torch.randint(0, w, (b,), generator=g)

    def _to_device(self, idx: torch.Tensor, aug: Augmentation | None) -> tuple[torch.Tensor, Augmentation | None]:
        """One host→device copy per step: the indices and the augmentation travel packed together."""
        rows = [idx] if aug is None else [idx, aug[0], aug[1], aug[2].long(), *aug[3:]]
        packed = torch.stack(rows).to(self.device, non_blocking=True)
        return packed[0], None if aug is None else (packed[1], packed[2], packed[3].bool(), *packed[4:])

    def _prepare(self, x: torch.Tensor, aug: Augmentation | None) -> torch.Tensor:
        if aug is not None:
            x = random_crop_flip(x, *aug[:3], padding=self.padding)
        x = x.float()
        if aug is not None and self.cutout:
            x = torch.where(cutout_mask(x.shape[-2:], aug[3], aug[4], self.cutout), self.mean, x)
        x = (x - self.mean) * self.inv_std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class BatchLoader(Loader):
    """The whole uint8 split on the device; a batch is an index gather."""

    def __init__(self, data: ImageSet, batch_size: int, mean, std, **kwargs):
        if not data.resident:
            raise ValueError("BatchLoader needs a resident split; use make_loader() or StreamingLoader")
        super().__init__(data, batch_size, mean, std, **kwargs)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (normalised float images, labels, sample indices) for this rank, for one epoch."""
        for planned, planned_aug in self.plan(epoch):
            idx, aug = self._to_device(planned, planned_aug)
            yield self._prepare(self.images[idx], aug), self.labels[idx], idx


class StreamingLoader(Loader):
    """A split on disk: DataLoader workers decode each planned batch into pinned memory."""

    def __init__(self, data: ImageSet, batch_size: int, mean, std, *, workers: int | None = None, **kwargs):
        super().__init__(data, batch_size, mean, std, **kwargs)
        self.workers = default_workers() if workers is None else workers
        self.source = _FileBatches(data)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        plan = list(self.plan(epoch))
        batches = torch.utils.data.DataLoader(
            self.source, sampler=[idx for idx, _ in plan], batch_size=None, num_workers=self.workers,
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if self.workers else None)
        with _sigchld_restored():
            for (planned, planned_aug), (images, y) in zip(plan, batches, strict=True):
                idx, aug = self._to_device(planned, planned_aug)
                x = images.to(self.device, non_blocking=True)
                yield self._prepare(x, aug), y.to(self.device, non_blocking=True), idx


class _FileBatches(torch.utils.data.Dataset):
    """Indexed by a whole batch of sample indices, so a worker decodes a batch per task.

    Paths are kept in one numpy string array, not a list of objects: forked workers would otherwise
    touch (and copy) every object's refcount.
    """

    def __init__(self, data: ImageSet):
        assert data.files is not None and data.size is not None
        self.files = np.asarray([str(p) for p in data.files])
        self.labels, self.size, self.channels = data.labels, data.size, data.channels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = decode_images(list(self.files[idx.numpy()]), self.size, self.channels, threads=1)
        return torch.from_numpy(images), self.labels[idx]


@contextmanager
def _sigchld_restored():
    """Put back the SIGCHLD handler that torch's DataLoader installs for the rest of the process.

    Left in place, it crashed the interpreter (SIGSEGV) when NNCF's accuracy-controlled quantisation
    later ran in the same process (seen in `sweep --export` order: train, then export). Workers are
    still watched during the epoch; the flag reset lets the next epoch install the handler again.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGCHLD) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGCHLD, previous)
            from torch.utils.data._utils import signal_handling
            if hasattr(signal_handling, "_SIGCHLD_handler_set"):
                signal_handling._SIGCHLD_handler_set = False


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


def make_loader(data: ImageSet, batch_size: int, mean, std, *, workers: int | None = None, **kwargs) -> Loader:
    """The resident loader for a split in memory, the streaming one for a split on disk."""
    if data.resident:
        return BatchLoader(data, batch_size, mean, std, **kwargs)
    return StreamingLoader(data, batch_size, mean, std, workers=workers, **kwargs)


def cutout_mask(size: tuple[int, int], cy: torch.Tensor, cx: torch.Tensor, side: int) -> torch.Tensor:
    """(B, 1, H, W) True inside each image's side × side square centred at (cy, cx), clipped at the
    borders (DeVries & Taylor's Cutout: the centre may lie anywhere, so the square is partly outside at
    times). The pixels there become the data's mean, i.e. 0 once normalised."""
    h, w = size
    lo = side // 2
    rows = torch.arange(h, device=cy.device)[None, :]
    cols = torch.arange(w, device=cx.device)[None, :]
    in_rows = (rows >= cy[:, None] - lo) & (rows < cy[:, None] - lo + side)  # (B, H)
    in_cols = (cols >= cx[:, None] - lo) & (cols < cx[:, None] - lo + side)  # (B, W)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def random_crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor,
                     padding: int = 4) -> torch.Tensor:
    """Per-sample crop of the zero-padded batch at offsets (dy, dx), then a horizontal flip where `flip`.

    One `gather` over the flattened padded images (6x faster on CPU than 4-D advanced indexing).
    """
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    hp, wp = h + 2 * padding, w + 2 * padding
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, flat).view(b, c, h, w)
