"""The device-resident loader: crops inside the padded image, ~50% flips, each sample once per epoch."""

from collections import Counter

import torch

from mimkd_edge.data.datasets import ImageSet
from mimkd_edge.data.loader import BatchLoader, random_crop_flip


def test_crop_and_flip_match_a_reference_crop():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    dy, dx, flip = torch.tensor([0, 4]), torch.tensor([8, 4]), torch.tensor([False, True])
    out = random_crop_flip(x, dy, dx, flip, padding=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    assert torch.equal(out[0], padded[0, :, 0:8, 8:16])
    assert torch.equal(out[1], padded[1, :, 4:12, 4:12].flip(-1))  # offset (4, 4) is the image itself, flipped
    assert torch.equal(out[1], x[1].flip(-1))


def _marked_set(n=200, size=8):
    # every image is constant = its index (mod 250) + 1, so any pixel of 0 came from the padding
    images = ((torch.arange(n) % 250) + 1).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, size, size).contiguous()
    return ImageSet(images, torch.arange(n))


def test_epoch_covers_every_sample_once_with_right_shapes():
    data = _marked_set(n=200)
    loader = BatchLoader(data, 32, (0, 0, 0), (1 / 255, 1 / 255, 1 / 255), train=True, seed=3)
    seen = []
    for x, y, idx in loader.epoch(0):
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 8, 8)
        assert torch.equal(y, idx)  # labels are the indices in this set
        seen.append(idx)
    seen = torch.cat(seen)
    assert len(loader) == 7 and sorted(seen.tolist()) == list(range(200))


def test_augmentation_is_a_shift_within_padding_and_flips_half():
    data = _marked_set(n=2000, size=8)
    loader = BatchLoader(data, 500, (0, 0, 0), (1 / 255, 1 / 255, 1 / 255), train=True, seed=0, padding=4)
    padded_rows = 0
    for x, _, idx in loader.epoch(1):
        value = (idx % 250 + 1).float().view(-1, 1, 1, 1)
        assert torch.all((x == 0) | (x == value)), "a pixel came from outside the padded image"
        padded_rows += (x[:, 0].amax(dim=2) == 0).any(1).sum().item()
    # a crop shows padding unless its vertical offset is exactly the padding (1 chance in 9)
    assert 0.8 < padded_rows / 2000 < 0.95


def test_flips_are_about_half():
    n = 4000
    ramp = torch.arange(8, dtype=torch.uint8).view(1, 1, 1, 8).expand(n, 3, 8, 8).contiguous() + 1
    loader = BatchLoader(ImageSet(ramp, torch.zeros(n, dtype=torch.long)), 1000, (0, 0, 0), (1 / 255,) * 3,
                         train=True, seed=0, padding=0)
    flipped = sum((x[:, 0, 0, 0] > x[:, 0, 0, -1]).sum().item() for x, _, _ in loader.epoch(0))
    assert 0.46 < flipped / n < 0.54


def test_same_seed_and_epoch_give_same_batches():
    data = _marked_set(n=64)
    a = BatchLoader(data, 16, (0, 0, 0), (1, 1, 1), train=True, seed=5)
    b = BatchLoader(data, 16, (0, 0, 0), (1, 1, 1), train=True, seed=5)
    for (xa, _, ia), (xb, _, ib) in zip(a.epoch(2), b.epoch(2), strict=True):
        assert torch.equal(ia, ib) and torch.equal(xa, xb)
    assert not torch.equal(next(iter(a.epoch(2)))[2], next(iter(a.epoch(3)))[2])


def test_test_loader_is_ordered_and_unaugmented():
    data = _marked_set(n=50)
    loader = BatchLoader(data, 20, (0, 0, 0), (1 / 255,) * 3, train=False)
    idx = torch.cat([i for _, _, i in loader.epoch(0)])
    assert idx.tolist() == list(range(50))
    x, _, i = next(iter(loader.epoch(0)))
    assert torch.all(x == (i % 250 + 1).float().view(-1, 1, 1, 1))


def test_augmentation_distribution_matches_torchvision_randomcrop_and_flip():
    """The standard CIFAR pipeline (RandomCrop(padding) + RandomHorizontalFlip) and ours reach the same
    (2p+1)^2 * 2 outcomes, each about equally often."""
    from torchvision import transforms

    size, p, n = 6, 2, 5000
    image = torch.arange(1, 3 * size * size + 1, dtype=torch.uint8).view(3, size, size)  # every pixel unique
    standard = transforms.Compose([transforms.RandomCrop(size, padding=p), transforms.RandomHorizontalFlip()])
    torch.manual_seed(0)
    theirs = Counter(tuple(standard(image).flatten().tolist()) for _ in range(n))
    loader = BatchLoader(ImageSet(image.expand(n, 3, size, size).contiguous(), torch.zeros(n, dtype=torch.long)),
                         1000, (0, 0, 0), (1 / 255,) * 3, train=True, seed=0, padding=p)
    ours = Counter(tuple(row) for x, _, _ in loader.epoch(0) for row in x.round().to(torch.uint8).flatten(1).tolist())
    outcomes = (2 * p + 1) ** 2 * 2
    assert set(ours) == set(theirs) and len(ours) == outcomes
    expected = n / outcomes
    for counts in (ours, theirs):  # chi-square against uniform, 49 degrees of freedom (p < 1e-5 at 100)
        assert sum((c - expected) ** 2 / expected for c in counts.values()) < 100
    total_variation = sum(abs(ours[k] - theirs[k]) for k in ours) / (2 * n)
    assert total_variation < 0.1


def test_cutout_erases_one_clipped_square_per_image_to_the_mean():
    from mimkd_edge.data import BatchLoader, ImageSet
    from mimkd_edge.data.loader import cutout_mask

    mask = cutout_mask((8, 8), torch.tensor([0, 4]), torch.tensor([7, 4]), 4)
    assert mask.shape == (2, 1, 8, 8)
    assert mask[0].sum() == 2 * 3  # centre (0, 7), rows -2..1 and cols 5..8 clipped: 2 × 3
    assert mask[1].sum() == 16 and mask[1, 0, 2:6, 2:6].all()  # centred: rows/cols 2..5
    images = torch.full((6, 3, 8, 8), 200, dtype=torch.uint8)
    data = ImageSet(images, torch.zeros(6, dtype=torch.long))
    plain = BatchLoader(data, 6, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), train=True, padding=0)
    erased = BatchLoader(data, 6, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), train=True, padding=0, cutout=4)
    (x, _, _), = plain.epoch(0)
    (xc, _, _), = erased.epoch(0)
    zeroed = (xc == 0).all(1)  # the mean, normalised
    assert not (x == 0).any() and all(4 <= n <= 16 for n in zeroed.flatten(1).sum(1).tolist())
    assert torch.equal(xc[~zeroed[:, None].expand_as(xc)], x[~zeroed[:, None].expand_as(x)])
