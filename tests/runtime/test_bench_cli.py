"""`mimkd-edge bench` then `mimkd-edge plot` end to end through click, on the tiny exported run."""

from click.testing import CliRunner

from mimkd_edge.cli import main


def test_bench_then_plot(exported_run, tmp_path):
    results, out = tmp_path / "bench.csv", tmp_path / "fig" / "tradeoff.png"
    runner = CliRunner()
    r = runner.invoke(main, ["bench", str(exported_run), "--cpu", "--backend", "torch,onnxruntime",
                             "--precision", "fp32", "--iters", "20", "--warmup", "2", "--throughput-batch", "8",
                             "--results", str(results)])
    assert r.exit_code == 0, r.output
    assert "onnx-fp32" in r.output and "torch-fp32" in r.output and "GFLOP/s" in r.output
    assert results.stat().st_size > 0 and (exported_run / "bench.json").is_file()

    r = runner.invoke(main, ["plot", str(exported_run), "--results", str(results), "--out", str(out), "--paper"])
    assert r.exit_code == 0, r.output
    for suffix in (".png", ".svg", ".md"):
        assert out.with_suffix(suffix).stat().st_size > 0, suffix
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in out.with_suffix(".svg").read_text()
    assert "| onnx-fp32 |" in out.with_suffix(".md").read_text()


def test_bench_errors_are_one_line(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["bench", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "no such run directory" in r.output
    r = runner.invoke(main, ["bench", "--seconds", "1", "--iters", "3", str(tmp_path)])
    assert r.exit_code == 2 and "exclude each other" in r.output
    r = runner.invoke(main, ["plot", "--results", str(tmp_path / "none.csv")])
    assert r.exit_code == 2 and "no results file" in r.output
