"""What a result records about where it came from: the CPU a run computed on."""

from mimkd_edge.provenance import cpu_name

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
"""


def test_cpu_name_says_model_family_and_the_flags_that_pick_kernels():
    assert cpu_name(XEON) == ("Intel(R) Xeon(R) Processor (GenuineIntel family 6 model 207; "
                              "avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8)")
    assert cpu_name("processor : 0\n") is None  # no model name (another architecture's layout): not guessed
