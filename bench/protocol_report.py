"""The decisive protocol's report (bench/results/protocol/README.md, written by bench.collect_protocol): per
student, every method's accuracy over seeds with its interval, and our methods compared with every other on
paired seeds — generated from run files only.

Three things a reader needs before believing a gap, and each is a column here: the interval (a
Student-t CI over seeds, `stats.paired_comparison` for differences), whether the run had converged
(how much its test figure moved between its last two evaluations: with a schedule annealed to 0 it
should barely move), and whether the two runs of a pair trained on one CPU at one commit
(`protocol.pair_flag`). Choices are made on the validation split, so its accuracy comes first.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable

from scipy import stats as _scipy

from mimkd_edge.report.protocol import METHOD_ORDER, pair_flag, seed_summaries
from mimkd_edge.report.stats import CONFIDENCE, paired_comparison
from mimkd_edge.report.tables import interval_cell, markdown, method_name, p_cell, student_name
from mimkd_edge.rundir import RunSummary, read_metrics

OURS = ("mimkd", "mimkd+kd", "mimkd+kd-ls", "mimkd+dkd", "mimkd+dkd-ls")  # the arms a claim is made for


@dataclass(frozen=True)
class ArmResult:
    """One (student, method arm) over its seeds."""
    student: str
    arm: str
    seeds: tuple[int, ...]
    val: tuple[float, ...]  # final validation accuracy per seed (empty where no split was held out)
    test: tuple[float, ...]
    last_move: float | None  # the largest |test(last) − test(one before)| over the seeds, in points
    mean_move: float | None = None  # test(last) − test(one before) of the mean over seeds: the reported figure's move

    @property
    def test_ci(self) -> tuple[float, float] | None:
        """Student-t interval of the mean test accuracy over seeds (None below two seeds)."""
        n = len(self.test)
        if n < 2:
            return None
        half = _scipy.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * statistics.stdev(self.test) / math.sqrt(n)
        return statistics.fmean(self.test) - half, statistics.fmean(self.test) + half


def last_move(run: Path) -> float | None:
    """Δ test accuracy between the run's last two evaluated epochs, signed (None with fewer than two)."""
    evaluated = [r.test_acc for r in read_metrics(run) if r.evaluated]
    return evaluated[-1] - evaluated[-2] if len(evaluated) > 1 else None


def arm_results(runs: Iterable[Path]) -> list[ArmResult]:
    """Every (student, arm) of `runs` (finished run directories), in the reports' method order."""
    runs = list(runs)
    by_name = {r.name: r for r in runs}
    out = []
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    for student, arms in sorted(seed_summaries(runs).items()):
        for arm, by_seed in sorted(arms.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
            seeds = tuple(sorted(by_seed))
            moves = [last_move(by_name[by_seed[s].name]) if by_seed[s].name in by_name else None for s in seeds]
            known = [m for m in moves if m is not None]
            out.append(ArmResult(student, arm, seeds,
                                 tuple(by_seed[s].final_val_acc for s in seeds if by_seed[s].final_val_acc is not None),
                                 tuple(by_seed[s].final_test_acc for s in seeds),
                                 max(map(abs, known)) if known else None,
                                 statistics.fmean(known) if known and len(known) == len(moves) else None))
    return out


def _mean_sd(values: tuple[float, ...]) -> str:
    if not values:
        return "–"
    sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.2f}{sd}"


def results_markdown(results: list[ArmResult]) -> str:
    """Per student × method: seeds, validation and test accuracy (mean ± SD over seeds), the test
    mean's 95 % interval, and the convergence check: how far the reported figure (the mean over seeds) moved
    between the last two epochs, and the largest move of a single seed."""
    columns = ["student", "method", "seeds", "val acc % (mean ± SD)", "test acc % (mean ± SD)",
               f"test mean, {CONFIDENCE * 100:g} % CI", "last-epoch move of the mean (pp)",
               "largest single-seed move (pp)"]
    rows = [[student_name(r.student), method_name(r.arm), len(r.seeds), _mean_sd(r.val), _mean_sd(r.test),
             "–" if r.test_ci is None else f"[{r.test_ci[0]:.2f}, {r.test_ci[1]:.2f}]",
             "–" if r.mean_move is None else f"{r.mean_move:+.2f}",
             "–" if r.last_move is None else f"{r.last_move:.2f}"] for r in results]
    return markdown(columns, rows, align=["l", "l", "r", "r", "r", "r", "r", "r"])


COLUMNS = ("student", "comparison", "n pairs", "mean difference (pp)", f"{CONFIDENCE * 100:g} % CI",
           "p (paired t)", "verdict", "val difference (pp)", "pairs crossing CPUs or commits")


def comparisons(runs: Iterable[Path], ours: tuple[str, ...] = OURS) -> list[dict]:
    """Each of our arms present against every other arm of the same student, on the seeds both have:
    the paired test comparison (a − b), the mean paired validation difference beside it, and which
    pairs crossed CPUs or commits."""
    out = []
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    for student, arms in sorted(seed_summaries(runs).items()):
        for a in (x for x in ours if x in arms):
            for b in sorted((x for x in arms if x != a), key=lambda x: (order.get(x, 99), x)):
                seeds = sorted(set(arms[a]) & set(arms[b]))
                if seeds:
                    out.append(_compare(student, a, b, [arms[a][s] for s in seeds], [arms[b][s] for s in seeds]))
    return out


def _compare(student: str, a: str, b: str, runs_a: list[RunSummary], runs_b: list[RunSummary]) -> dict:
    d = paired_comparison([r.final_test_acc for r in runs_a], [r.final_test_acc for r in runs_b])
    vals = [(x.final_val_acc, y.final_val_acc) for x, y in zip(runs_a, runs_b, strict=True)]
    val = statistics.fmean(x - y for x, y in vals) if all(x is not None and y is not None for x, y in vals) else None
    flags = [(r.seed, pair_flag(r, s)) for r, s in zip(runs_a, runs_b, strict=True)]
    return {"student": student, "a": a, "b": b, "diff": d, "val": val,
            "flagged": [(seed, flag) for seed, flag in flags if flag]}


def comparisons_markdown(rows: list[dict]) -> str:
    body = []
    for r in rows:
        d = r["diff"]
        flagged = "; ".join(f"seed {s}: {f}" for s, f in r["flagged"]) or "none"
        body.append([student_name(r["student"]), f"{method_name(r['a'])} − {method_name(r['b'])}", d.n,
                     f"{d.mean:+.2f}", interval_cell(d.ci), p_cell(d.p), d.verdict,
                     "–" if r["val"] is None else f"{r['val']:+.2f}", flagged])
    return markdown(COLUMNS, body, align=["l", "l", "r", "r", "r", "r", "l", "r", "l"])


def standing_lines(rows: list[dict]) -> list[str]:
    """One sentence per student and our arm: where it stands against each other arm, as measured —
    "ahead" / "behind" only where the interval excludes 0, "level" otherwise."""
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["student"], r["a"]), []).append(r)
    for (student, a), members in groups.items():
        parts = [f"{_relation(r['diff'].verdict)} {method_name(r['b'])} ({r['diff'].mean:+.2f}, "
                 f"CI {interval_cell(r['diff'].ci)}, n = {r['diff'].n})" for r in members]
        lines.append(f"{student_name(student)}, {method_name(a)}: " + "; ".join(parts) + ".")
    return lines


def _relation(verdict: str) -> str:
    """"ahead" → "ahead of", "behind" → "behind", "level…" → "level with"."""
    return {"ahead": "ahead of", "behind": "behind"}.get(verdict, "level with")


LOGIT_CANDIDATES = ("kd", "kd-ls", "dkd")  # the logit baselines whose term MIMKD may take, in tie-break order
CHOICE_SEEDS = (0, 1)  # the seeds the choice is made on, fixed before any run trained


def logit_choice(runs: Iterable[Path]) -> dict[str, dict]:
    """The pre-registered choice of MIMKD's logit term, per student: the candidate baseline with the best
    mean validation accuracy over seeds 0 and 1 (a tie goes to the earlier of KD, KD + LS, DKD).
    student → {"val": {arm: (val per choice seed) or None where a seed is missing}, "chosen": arm or None};
    None until all three candidates have finished both seeds."""
    out = {}
    for student, arms in sorted(seed_summaries(runs).items()):
        vals = {}
        for arm in LOGIT_CANDIDATES:
            by_seed = arms.get(arm, {})
            got = tuple(by_seed[s].final_val_acc for s in CHOICE_SEEDS if s in by_seed)
            vals[arm] = got if len(got) == len(CHOICE_SEEDS) and None not in got else None
        chosen = None
        if all(v is not None for v in vals.values()):
            chosen = max(LOGIT_CANDIDATES, key=lambda a: (statistics.fmean(vals[a]), -LOGIT_CANDIDATES.index(a)))
        out[student] = {"val": vals, "chosen": chosen}
    return out


def choice_markdown(choice: dict[str, dict]) -> str:
    """The choice as a table: each candidate's validation accuracy on the choice seeds and their mean."""
    columns = ["student", "logit baseline", *[f"val acc % seed {s}" for s in CHOICE_SEEDS], "mean", "MIMKD gets"]
    body = []
    for student, c in choice.items():
        for arm in LOGIT_CANDIDATES:
            v = c["val"][arm]
            cells = ["–"] * (len(CHOICE_SEEDS) + 1) if v is None else [*(f"{x:.2f}" for x in v),
                                                                         f"{statistics.fmean(v):.2f}"]
            verdict = ("undecided: a seed has not finished" if c["chosen"] is None
                       else f"its term: {method_name(f'mimkd+{arm}')}" if c["chosen"] == arm else "")
            body.append([student_name(student), method_name(arm), *cells, verdict])
    return markdown(columns, body, align=["l", "l", *["r"] * (len(CHOICE_SEEDS) + 1), "l"])


def leader_lines(results: list[ArmResult], rows: list[dict], recipe_of: dict[tuple[str, str], str]) -> list[str]:
    """Per student, the arm a user should pick: the best mean validation accuracy (a choice made on the
    validation split, like every other), its test accuracy with the interval and its recipe; then how each
    of our arms compares with it on the paired test seeds. Named only once every arm has the same seeds:
    a mean over more seeds is not better evidence of a higher mean, and one over fewer is a luckier draw."""
    lines = []
    for student in dict.fromkeys(r.student for r in results):
        arms = [r for r in results if r.student == student and r.val]
        if not arms:
            continue
        counts = sorted({len(r.seeds) for r in arms})
        if len({r.seeds for r in arms}) > 1:
            lines.append(f"{student_name(student)}: the arm to pick waits until every arm has the same seeds "
                         f"(now {counts[0]}–{counts[-1]} per arm).")
            continue
        n = counts[0]
        best = max(arms, key=lambda r: statistics.fmean(r.val))
        ci = f", 95 % CI {best.test_ci[0]:.2f}–{best.test_ci[1]:.2f}" if best.test_ci else ""
        recipe = recipe_of.get((student, best.arm))
        val, test = statistics.fmean(best.val), statistics.fmean(best.test)
        text = (f"{student_name(student)}: the best mean validation accuracy over {n} seed{'s' * (n > 1)} is "
                f"{method_name(best.arm)}'s ({val:.2f} %; test {test:.2f} %{ci})"
                + (f", recipe `{recipe}`" if recipe else "") + ".")
        mine = [r for r in rows if r["student"] == student]
        if best.arm in OURS:  # the leader is ours: its paired difference over every other arm
            parts = [f"over {method_name(r['b'])} {_cell(r)}" for r in mine if r["a"] == best.arm]
            text += (" Its paired test difference " + "; ".join(parts) + ".") if parts else ""
        else:  # a baseline leads: each of our arms against it
            parts = [f"{method_name(r['a'])} {_cell(r)}" for r in mine if r["b"] == best.arm]
            text += (" Our arms against it on the paired test seeds: " + "; ".join(parts) + ".") if parts else ""
        lines.append(text)
    return lines


def _cell(row: dict) -> str:
    d = row["diff"]
    return f"{d.mean:+.2f} (CI {interval_cell(d.ci)}, {d.verdict})"
