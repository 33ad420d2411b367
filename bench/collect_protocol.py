"""Copy the small files of every finished run of the decisive protocol (issue 39) into
bench/results/protocol/ and rebuild its tables and trade-off figure from those copies alone.

    mimkd-edge sweep recipes/sweeps/protocol.toml --data-dir DATA          # train (resumable, --shard I/N)
    mimkd-edge sweep recipes/sweeps/protocol.toml --data-dir DATA --no-train --export
    mimkd-edge bench RUN --data-dir DATA --threads 1 --shape static --seconds 1 --precision fp32,int8  # each student
    python -m bench.collect_protocol --runs runs/protocol

Copied per run: summary.json (with each session's commit, CPU and data hash), metrics.jsonl, recipe.toml,
bench.json, export/manifest.json and model.safetensors. The tables (README.md's generated blocks): the
teacher; per student × method, validation and test accuracy over seeds with the test mean's 95 % interval
and the convergence check; every comparison of our arms with every other on paired seeds (mean
difference, 95 % CI, paired-t p, verdict, the validation difference, pairs that crossed CPUs or commits);
one sentence per student and arm saying where it stands; the pre-registered choice of MIMKD's logit term
(validation, seeds 0 and 1); per student, the arm to pick (best mean validation accuracy) and its recipe.
The arm to pick and the sentences on our arms also fill the top-level README's `protocol` block, its lead.
tests/bench/test_committed_results.py regenerates them from the copies and checks they match the committed
pages.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.protocol_report import (arm_results, choice_markdown, comparisons, comparisons_markdown, leader_lines,
                                   logit_choice, results_markdown, standing_lines)
from mimkd_edge.atomic import write_text
from mimkd_edge.report.blocks import block_markers, fill_block
from mimkd_edge.report.plot import plot_tradeoff
from mimkd_edge.report.protocol import arm_rows, seed_summaries
from mimkd_edge.report.tables import markdown, student_name
from mimkd_edge.rundir import RunDir, read_summary

FILES = ("summary.json", "metrics.jsonl", "recipe.toml", "bench.json", "export/manifest.json", "model.safetensors")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATOR = "bench/collect_protocol.py"
TITLE = "Decisive protocol, CIFAR-10: top-1 vs CPU latency (means over seeds ± SD)"  # short: the legend is beside it


def copy_finished(src: Path, dest: Path) -> None:
    for run in sorted(p.parent for p in src.glob("*/summary.json")):
        if not RunDir(run).finished or run.resolve() == (dest / "runs" / run.name).resolve():
            continue
        for name in FILES:
            if (run / name).is_file():
                (dest / "runs" / run.name / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / name, dest / "runs" / run.name / name)


TEACHER_PREFIX = "protocol-teacher-"  # recipes/protocol/teacher-*.toml name their runs so


def split_runs(dest: Path) -> tuple[list[Path], list[Path]]:
    """(teacher runs, student runs) among the copies."""
    runs = sorted(p.parent for p in (dest / "runs").glob("*/summary.json"))
    teachers = [r for r in runs if r.name.startswith(TEACHER_PREFIX)]
    return teachers, [r for r in runs if r not in teachers]


def teacher_markdown(runs: list[Path]) -> str:
    rows = []
    for run in runs:
        s = read_summary(run)
        sessions = s.sessions or [{}]
        rows.append([student_name(s.student.model), f"{s.student.params:,}", s.epochs,
                     "–" if s.final_val_acc is None else f"{s.final_val_acc:.2f}", f"{s.final_test_acc:.2f}",
                     f"{s.wall_seconds / 3600:.2f}", "; ".join(dict.fromkeys(x.get("cpu") or "?" for x in sessions)),
                     ", ".join(dict.fromkeys((x.get("git_commit") or "?")[:7] for x in sessions))])  # in session order
    return markdown(["teacher", "params", "epochs", "val acc %", "test acc %", "wall h", "CPU", "commit"], rows,
                    align=["l", "r", "r", "r", "r", "r", "l", "l"])


def recipe_of(runs: list[Path]) -> dict[tuple[str, str], str]:
    """(student, arm) → the committed recipe its runs came from: a run `protocol-<stem>-s<seed>` was made
    by `recipes/protocol/<stem>.toml` (omitted where no such file is committed)."""
    out = {}
    for student, arms in seed_summaries(runs).items():
        for arm, by_seed in arms.items():
            seed, s = next(iter(by_seed.items()))
            path = Path("recipes/protocol") / f"{s.name.removeprefix('protocol-').removesuffix(f'-s{seed}')}.toml"
            if (ROOT / path).is_file():
                out[student, arm] = path.as_posix()
    return out


def blocks(dest: Path) -> dict[str, str]:
    teachers, students = split_runs(dest)
    rows = comparisons(students)
    results = arm_results(students)
    return {"teacher": teacher_markdown(teachers), "results": results_markdown(results),
            "choice": choice_markdown(logit_choice(students)),
            "leader": "".join(f"- {line}\n" for line in leader_lines(results, rows, recipe_of(students)))
            or "(no finished run yet)\n",
            "comparisons": comparisons_markdown(rows),
            "standing": "".join(f"- {line}\n" for line in standing_lines(rows)) or "(no comparison yet)\n"}


README_BLOCK = "protocol"  # the top-level README's lead: the same lines as the page's leader and standing blocks


def readme_block(generated: dict[str, str]) -> str:
    """The README's lead on the protocol, from the page's generated blocks: which arm to pick per student,
    and where our arms stand, so the README can never read stronger than the paired seeds do."""
    return generated["leader"] + generated["standing"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/protocol", help="the sweep's output folder")
    ap.add_argument("--dest", default=str(HERE / "results" / "protocol"))
    args = ap.parse_args()
    src, dest = Path(args.runs), Path(args.dest)
    copy_finished(src, dest)
    notes = dest / "README.md"
    text = notes.read_text() if notes.is_file() else "# The decisive protocol (issue 39)\n"
    generated = blocks(dest)
    for name, body in generated.items():
        text = fill_block(text, *block_markers(name, GENERATOR), body)
    write_text(notes, text)
    readme = ROOT / "README.md"
    start, end = block_markers(README_BLOCK, GENERATOR)
    if readme.is_file() and start in readme.read_text():
        write_text(readme, fill_block(readme.read_text(), start, end, readme_block(generated)))
        print(f"wrote {readme}")
    benched = [r for r in split_runs(dest)[1] if RunDir(r).benched]
    if benched:
        paths = plot_tradeoff(arm_rows(benched), dest / "tradeoff.png", paper=False, seed_means=True, title=TITLE)
        print(f"wrote {paths['png']}, {paths['svg']}")
    print(f"wrote {notes}")


if __name__ == "__main__":
    main()
