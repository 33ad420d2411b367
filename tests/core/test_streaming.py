"""The streaming loader (DataLoader workers decoding files) yields exactly the resident loader's batches."""

import torch

from helpers import write_image_folder
from mimkd_edge.data import BatchLoader, StreamingLoader, load_splits, make_loader
from mimkd_edge.recipe import DataConfig

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _splits(tmp_path, budget_gb):
    root = tmp_path / "set"
    if not root.exists():
        write_image_folder(root, classes=3, train=11, test=5)
    return load_splits(DataConfig(dataset="imagefolder", root=str(root), num_classes=3, image_size=8,
                                  resident_max_gb=budget_gb))


def _batches(loader, epoch):
    return [(x.clone(), y.clone(), i.clone()) for x, y, i in loader.epoch(epoch)]


def test_streamed_training_batches_equal_resident_ones(tmp_path):
    resident, streamed = _splits(tmp_path, 4.0), _splits(tmp_path, 0.0)
    assert not streamed.train.resident
    kw = dict(train=True, seed=7, channels_last=True)
    a = make_loader(resident.train, 8, MEAN, STD, **kw)
    b = make_loader(streamed.train, 8, MEAN, STD, workers=2, **kw)
    assert isinstance(a, BatchLoader) and isinstance(b, StreamingLoader) and len(a) == len(b) == 4
    for epoch in (0, 1):
        for (xa, ya, ia), (xb, yb, ib) in zip(_batches(a, epoch), _batches(b, epoch), strict=True):
            assert torch.equal(ia, ib) and torch.equal(ya, yb) and torch.equal(xa, xb)
            assert xb.is_contiguous(memory_format=torch.channels_last)


def test_streamed_rank_shards_cover_the_epoch_once(tmp_path):
    streamed = _splits(tmp_path, 0.0)
    seen = []
    for rank in range(2):
        loader = StreamingLoader(streamed.train, 8, MEAN, STD, train=True, seed=1, rank=rank, world_size=2, workers=0)
        seen += [i for _, _, i in loader.epoch(0)]
    seen = torch.cat(seen)
    # 33 images, global batch 8: four full steps; the trailing single image is dropped, none is repeated
    assert len(seen) == 32 and len(set(seen.tolist())) == 32 and set(seen.tolist()) <= set(range(33))


def test_streamed_test_split_is_ordered_and_unaugmented(tmp_path):
    resident, streamed = _splits(tmp_path, 4.0), _splits(tmp_path, 0.0)
    a = BatchLoader(resident.test, 4, MEAN, STD, train=False)
    b = StreamingLoader(streamed.test, 4, MEAN, STD, train=False, workers=1)
    xa, xb = torch.cat([x for x, _, _ in a.epoch(0)]), torch.cat([x for x, _, _ in b.epoch(0)])
    assert torch.equal(xa, xb) and len(xb) == 15


def test_streaming_epoch_leaves_no_sigchld_handler_behind(tmp_path):
    """torch's DataLoader SIGCHLD handler, left installed, crashed a later NNCF export in the same process."""
    import signal

    streamed = _splits(tmp_path, 0.0)
    before = signal.getsignal(signal.SIGCHLD)
    loader = StreamingLoader(streamed.train, 8, MEAN, STD, train=True, workers=1)
    for epoch in range(2):
        assert len(_batches(loader, epoch)) == 4
        assert signal.getsignal(signal.SIGCHLD) == before
