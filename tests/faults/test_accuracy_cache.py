"""The accuracy cache is only a cache: an entry is typed, range-checked, consistent with its counts and
bound to the artifact's hash, backend and test split; anything else is measured again, never reported."""

import json

import pytest

from mimkd_edge.rundir import RunDir
from mimkd_edge.runtime.bench import BenchConfig, bench_runs

CONFIG = BenchConfig(backends=("onnxruntime",), precisions=("fp32",), shapes=("dynamic",), iters=3, warmup=1,
                     throughput_batch=0, sgemm=False)


def _bench(run):
    (row,) = bench_runs([run], CONFIG, results=None)
    return row


def _entry(cache):
    (sha,) = cache["entries"]
    return sha, cache["entries"][sha]["onnxruntime"]


def _forge_accuracy(cache):
    _, entry = _entry(cache)
    entry["accuracy"] = 99.0  # a 25 % model reported at 99 %


def _forge_consistently(cache):
    _, entry = _entry(cache)
    entry["accuracy"], entry["correct"] = 100.0, entry["images"]  # counts agree; the seal does not


def _out_of_range(cache):
    _entry(cache)[1].update(accuracy=150.0, images=-3)


def _not_numbers(cache):
    _entry(cache)[1].update(accuracy="99", images=None)


def _another_split(cache):
    _entry(cache)[1]["split"]["images"] += 1


@pytest.mark.parametrize("tamper", [_forge_accuracy, _forge_consistently, _out_of_range, _not_numbers,
                                    _another_split])
def test_a_tampered_entry_is_measured_again(exported_run, tamper):
    measured = _bench(exported_run)
    path = RunDir(exported_run).accuracy_cache
    cache = json.loads(path.read_text())
    tamper(cache)
    path.write_text(json.dumps(cache))
    again = _bench(exported_run)
    assert again.accuracy == measured.accuracy and again.accuracy_images == measured.accuracy_images
    assert _bench(exported_run).accuracy == measured.accuracy  # the re-measured entry was written back


@pytest.mark.parametrize("content", ["[]", '{"entries": []}', '{"entries": {"x": []}}', '{"entries": {"x": {"a": 1}}}',
                                     "null", '{"entries": "abc"}'])
def test_a_cache_of_the_wrong_shape_is_measured_again(exported_run, content):
    measured = _bench(exported_run)
    RunDir(exported_run).accuracy_cache.write_text(content)
    assert _bench(exported_run).accuracy == measured.accuracy
