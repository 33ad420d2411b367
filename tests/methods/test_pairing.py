"""The set R (the paper's appendix A.3): the walking rule reproduces the paper's Tables 4 and 5."""

import pytest

from mimkd_edge.methods import MethodContext, create_method
from mimkd_edge.methods.mimkd import MIMKD
from mimkd_edge.methods.pairing import PairingError, auto_pairs, resolve_pairs
from mimkd_edge.schema import build

WRN_40_2 = [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)]
WRN_16_1 = [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]
RESNET50 = [(64, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4)]
SHUFFLENETV2 = [(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4)]
RESNET32X4 = [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]
CONV4 = [(64, 16, 16), (64, 8, 8), (64, 4, 4), (64, 2, 2)]
RESNET56 = [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)]


def _shapes(teacher, student, pairs):
    return [(teacher[t], student[s]) for t, s in pairs]


def test_table_4_wrn_40_2_to_wrn_16_1():
    pairs = auto_pairs(WRN_40_2, WRN_16_1)
    assert pairs == ((0, 0), (1, 1), (2, 2), (3, 3))
    assert _shapes(WRN_40_2, WRN_16_1, pairs)[1] == ((32, 32, 32), (16, 32, 32))  # channels may differ


def test_table_5_resnet50_to_shufflenetv2():
    pairs = auto_pairs(RESNET50, SHUFFLENETV2)
    assert _shapes(RESNET50, SHUFFLENETV2, pairs) == [
        ((64, 32, 32), (24, 32, 32)), ((512, 16, 16), (116, 16, 16)),
        ((1024, 8, 8), (232, 8, 8)), ((2048, 4, 4), (464, 4, 4))]


def test_resnet32x4_to_shufflenetv2_gives_3_pairs():
    assert auto_pairs(RESNET32X4, SHUFFLENETV2) == ((0, 0), (2, 1), (3, 2))


def test_student_with_smaller_first_map():
    # Conv-4-MP's first map is 16×16: the teacher's two 32×32 maps are skipped
    assert auto_pairs(RESNET56, CONV4) == ((2, 0), (3, 1))


def test_explicit_pairs_checked():
    assert resolve_pairs(RESNET32X4, SHUFFLENETV2, [(1, 0), (-1, -2)]) == ((1, 0), (3, 2))
    with pytest.raises(PairingError, match="differ in spatial size"):
        resolve_pairs(RESNET32X4, SHUFFLENETV2, [(0, 1)])
    with pytest.raises(PairingError, match="out of range"):
        resolve_pairs(RESNET32X4, SHUFFLENETV2, [(9, 0)])


def _ctx(teacher, student):
    return MethodContext(num_classes=10, num_samples=100, input_size=32, student_maps=tuple(student),
                         student_dim=8, teacher_maps=tuple(teacher), teacher_dim=8)


def test_empty_pairing_is_a_clear_error_when_needed():
    teacher = [(8, 7, 7), (8, 3, 3)]  # no size in common with the student
    student = [(4, 32, 32), (4, 16, 16)]
    opts = build(MIMKD.Options, {"lambda_local": 0.75, "lambda_feature": 0.0, "critic_hidden": 8})
    with pytest.raises(ValueError) as err:
        create_method("mimkd", opts, _ctx(teacher, student))
    msg = str(err.value)
    assert "\n" not in msg and "set R is empty" in msg and "lambda_local" in msg
    # without the terms that need R, the method builds (global term only)
    opts = build(MIMKD.Options, {"lambda_local": 0, "lambda_feature": 0, "critic_hidden": 8, "nce_k": 16})
    assert create_method("mimkd", opts, _ctx(teacher, student)).pairs == ()


def test_pairs_option_from_a_table():
    opts = build(MIMKD.Options, {"pairs": [[1, 0], [2, 1]], "critic_hidden": 8, "nce_k": 16})
    assert opts.pairs == ((1, 0), (2, 1))
    method = create_method("mimkd", opts, _ctx(RESNET32X4, SHUFFLENETV2))
    assert method.pairs == ((1, 0), (2, 1)) and len(method.feature_critics) == 2
    assert method.local_map == 1  # the student's deepest map in R
