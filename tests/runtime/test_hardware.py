"""CPU description, the ISA-based peak estimate, the probes, and the FLOP bound arithmetic."""

import pytest

from mimkd_edge.runtime import hardware

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz
cpu MHz\t\t: 2300.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni hypervisor

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz
cpu MHz\t\t: 2400.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni hypervisor
"""


def test_parse_cpuinfo():
    info = hardware.parse_cpuinfo(CPUINFO)
    assert info["model"].startswith("Intel(R) Xeon(R) Gold 5218")
    assert info["vendor"] == "GenuineIntel" and info["family"] == 6
    assert info["logical_cpus"] == 2 and info["physical_cores"] == 1  # two hyperthreads of one core
    assert info["isa"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"]
    assert info["hypervisor"] and info["mhz_reported"] == [2300.0, 2400.0]


@pytest.mark.parametrize("isa, vendor, family, expected", [
    (["avx", "avx2", "fma"], "AuthenticAMD", 0x19, 32),                # Zen 3: 2 FMA × 8 lanes × 2
    (["avx", "avx2", "fma", "avx512f"], "AuthenticAMD", 0x19, 32),     # Zen 4: 512-bit ops on 256-bit pipes
    (["avx", "avx2", "fma", "avx512f"], "AuthenticAMD", 0x1A, 64),     # Zen 5
    (["avx", "avx2", "fma", "avx512f"], "GenuineIntel", 6, 64),        # 2 × 16 lanes × 2
    (["avx"], "GenuineIntel", 6, 16),
    ([], None, None, 8),
])
def test_flops_per_cycle(isa, vendor, family, expected):
    assert hardware.flops_per_cycle(isa, vendor, family)[0] == expected


def test_estimated_peak_prefers_the_measured_clock():
    cpu = {"isa": ["avx2", "fma"], "vendor": "AuthenticAMD", "family": 0x19}
    reported = hardware.estimated_peak(cpu, {"mhz_max": 2500.0, "probe": None})
    assert reported["gflops_per_core"] == pytest.approx(80.0) and reported["clock_source"].startswith("clock reported")
    measured = hardware.estimated_peak(cpu, {"mhz_max": 2500.0, "probe": {"ghz": 3.5}})
    assert measured["gflops_per_core"] == pytest.approx(112.0) and measured["peak_source"] == "estimated from ISA"


def test_flop_bound_and_percent():
    # Conv-4-MP: 14.2 M MACs at 78 GFLOP/s → 2·14.2e6 / 78e9 s = 0.3641 ms
    assert hardware.flop_bound_ms(14.2e6, 78.0) == pytest.approx(0.36410, rel=1e-4)
    assert hardware.flop_bound_ms(14.2e6, 78.0, batch=4) == pytest.approx(4 * 0.36410, rel=1e-4)
    assert hardware.percent_of_bound(0.36, 0.72) == pytest.approx(50.0)
    assert hardware.flop_bound_ms(None, 78.0) is None and hardware.percent_of_bound(None, 1.0) is None


def test_probes_run_here():
    clock = hardware.clock_probe(loops=2000, repeats=3)
    assert clock is None or 0.3 <= clock["ghz"] <= 6.5 and clock["label"] == "measured"
    sgemm = hardware.sgemm_probe(n=128, repeats=2)
    assert sgemm["gflops_best"] >= sgemm["gflops_median"] > 0 and sgemm["peak_source"] == "measured sgemm"


@pytest.mark.parametrize("isa, gops", [
    (["avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"], 6144.0),  # AMX: 2048 ops/cycle × 3 GHz
    (["avx2", "fma", "avx512f", "avx512_vnni"], 768.0),  # vpdpbusd: 4× AVX-512's 64 flops/cycle
    (["avx2", "fma", "avx_vnni"], 384.0),                 # 4× AVX2's 32
    (["avx2", "fma"], 128.0),                             # vpmaddubsw + vpmaddwd + vpaddd: 4/3× AVX2's 32
    (["sse4_2"], 24.0),                                   # 1× SSE's 8
])
def test_int8_peak(isa, gops):
    peak = hardware.estimated_peak({"isa": isa, "vendor": "GenuineIntel", "family": 6}, {"probe": {"ghz": 3.0}})
    assert peak["int8_gops_per_core"] == pytest.approx(gops)


def test_amx_peaks_do_not_follow_the_vector_units():
    """The tile unit's rate is its own: a VM that hides avx512f (FP32 at AVX2's 32 flops/cycle) still has it."""
    cpu = {"isa": ["avx2", "fma", "amx_tile", "amx_int8", "amx_bf16"], "vendor": "GenuineIntel", "family": 6}
    peak = hardware.estimated_peak(cpu, {"probe": {"ghz": 2.0}})
    assert peak["gflops_per_core"] == pytest.approx(64.0)
    assert (peak["int8_gops_per_core"], peak["bf16_gflops_per_core"]) == (pytest.approx(4096.0), pytest.approx(2048.0))


@pytest.mark.parametrize("isa, gflops", [
    (["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"], 3072.0),  # AMX: 1024 flops/cycle × 3 GHz
    (["avx2", "fma", "avx512f", "avx512_bf16"], 384.0),                          # vdpbf16ps: 2× AVX-512's 64
    (["avx2", "fma", "avx512f"], None),                                           # emulated: no bound
])
def test_bf16_peak(isa, gflops):
    peak = hardware.estimated_peak({"isa": isa, "vendor": "GenuineIntel", "family": 6}, {"probe": {"ghz": 3.0}})
    assert peak["bf16_gflops_per_core"] == (None if gflops is None else pytest.approx(gflops))


def test_implausible_clock_reading_is_refused_and_the_reported_clock_used():
    """An add chain read 23.7 GHz on a 2.6 GHz Xeon (adds folded at rename): such a reading must not
    become the peak's clock."""
    refused = hardware.clock_reading(23.719, loops=4000, repeats=60)
    assert "ghz" not in refused and "23.719" in refused["probe_refused"]
    freq = {"mhz_max": 2600.0, "cpufreq_max_mhz": None, "probe": refused}
    cpu = {"isa": ["avx2", "fma", "avx512f"], "vendor": "GenuineIntel", "family": 6}
    peak = hardware.estimated_peak(cpu, freq)
    assert peak["ghz"] == pytest.approx(2.6) and peak["clock_source"] == "clock reported by /proc/cpuinfo"
    assert hardware.clock_reading(3.1, 4000, 60)["ghz"] == 3.1

