"""The CPU protocol's own tables (bench/results/cpu*/README.md, written by bench.collect_cpu_results): the
paired-seed order of methods, the MI trace of a MIMKD run, the linear probes, the ablation, and issue 17's
exact-against-sampled MIMKD runs. Read back from the run directories only.
"""

from __future__ import annotations

import statistics
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple
from collections.abc import Iterable

from mimkd_edge.recipe import load_recipe
from mimkd_edge.report.protocol import METHOD_ORDER, pair_flag, run_arm, seed_summaries
from mimkd_edge.report.stats import CONFIDENCE, paired_comparison
from mimkd_edge.report.tables import fixed_cell, interval_cell, markdown, method_name, p_cell, student_name
from mimkd_edge.rundir import RunDir, RunSummary, read_metrics, read_summary
from mimkd_edge.rundir.probe_results import read_probe_results


def _seed_accuracies(runs: Iterable[Path]) -> dict[str, dict[str, dict[int, float]]]:
    """student → method arm (`run_arm`) → seed → last-epoch test accuracy."""
    return {student: {arm: {seed: s.final_test_acc for seed, s in by_seed.items()} for arm, by_seed in arms.items()}
            for student, arms in seed_summaries(runs).items()}



def paired_seed_markdown(runs: Iterable[Path], chain: tuple[str, ...] = ("mimkd", "kd", "none")) -> str:
    """Two tables. Per student and seed: the accuracy of each method of `chain`, the gaps between
    neighbours and whether the order (MIMKD > KD > none by default) held. Then per student and
    neighbouring pair, the paired comparison over those seeds (`paired_comparison_row`). Seeds are
    paired: a seed gives every method the same initialisation of the student, data order and
    augmentation. Only seeds every method of `chain` has count, so both tables rest on the same pairs."""
    seed_rows, comparison_rows = [], []
    for student, methods in sorted(seed_summaries(runs).items()):
        if not all(m in methods for m in chain):
            continue
        seeds = sorted(set.intersection(*(set(methods[m]) for m in chain)))
        paired = {m: {seed: methods[m][seed] for seed in seeds} for m in chain}
        seed_rows += _seed_rows(student, chain, paired)
        if seeds:
            comparison_rows += [paired_comparison_row(student, a, b, paired[a], paired[b]) for a, b in pairwise(chain)]
    names = [method_name(m) for m in chain]
    columns = ["student", "seed", *(f"{n} %" for n in names),
               *(f"{a} − {b}" for a, b in pairwise(names)), " > ".join(names) + " held"]
    return (markdown(columns, seed_rows, align=["l", "l"] + ["r"] * (len(columns) - 2)) + "\n"
            + markdown(COMPARISON_COLUMNS, comparison_rows, align=["l", "l", "r", "r", "r", "r", "l", "l"]))


def _seed_rows(student: str, chain: tuple[str, ...], paired: dict[str, dict[int, RunSummary]]) -> list[list]:
    """The per-seed rows of `paired_seed_markdown`, and their means when there are two seeds or more
    (no ± SD: the spread of the differences is read from the comparison table's interval)."""
    seeds = sorted(paired[chain[0]])
    accs = {m: [paired[m][seed].final_test_acc for seed in seeds] for m in chain}
    rows = []
    for i, seed in enumerate(seeds):
        gaps = [accs[a][i] - accs[b][i] for a, b in pairwise(chain)]
        rows.append([student_name(student), seed, *(f"{accs[m][i]:.2f}" for m in chain),
                     *(f"{g:+.2f}" for g in gaps), "yes" if all(g > 0 for g in gaps) else "no"])
    if len(seeds) > 1:
        held = sum(all(accs[a][i] > accs[b][i] for a, b in pairwise(chain)) for i in range(len(seeds)))
        rows.append([student_name(student), "mean", *(f"{statistics.fmean(accs[m]):.2f}" for m in chain),
                     *(f"{statistics.fmean(accs[a]) - statistics.fmean(accs[b]):+.2f}" for a, b in pairwise(chain)),
                     f"{held} of {len(seeds)} seeds"])
    return rows


COMPARISON_COLUMNS = ("student", "comparison", "n pairs", "mean difference (pp)",
                      f"{CONFIDENCE * 100:g} % CI (Student t, n − 1 df)", "p (paired t, two-sided)",
                      "verdict (first vs second: CI against 0)", "pairs crossing CPUs or commits")


def paired_comparison_row(student: str, a: str, b: str, runs_a: dict[int, RunSummary],
                          runs_b: dict[int, RunSummary]) -> list:
    """One row of the comparison table: method arm `a` against `b` on the seeds both have (`runs_a`,
    `runs_b`: seed → summary), by `stats.paired_comparison` of their final test accuracies (a − b),
    and the seeds whose two runs crossed CPUs or commits (`pair_flag`): their difference holds more
    than the method's effect."""
    seeds = sorted(set(runs_a) & set(runs_b))
    d = paired_comparison([runs_a[s].final_test_acc for s in seeds], [runs_b[s].final_test_acc for s in seeds])
    return [student_name(student), f"{method_name(a)} − {method_name(b)}", d.n, f"{d.mean:+.2f}", interval_cell(d.ci),
            p_cell(d.p), d.verdict, _flags_cell({s: pair_flag(runs_a[s], runs_b[s]) for s in seeds})]


def _flags_cell(flags: dict[int, str]) -> str:
    """E.g. "2 of 3: seeds 0, 2: CPU unknown, commit" (seeds grouped by reason), or "none"."""
    by_reason: dict[str, list[int]] = {}
    for seed, flag in sorted(flags.items()):
        if flag:
            by_reason.setdefault(flag, []).append(seed)
    if not by_reason:
        return "none"
    groups = [f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}: {flag}"
              for flag, seeds in by_reason.items()]
    return f"{sum(map(len, by_reason.values()))} of {len(flags)}: " + "; ".join(groups)


MI_KEYS = ("mi_global", "mi_local", "mi_feature")


def mi_trace_markdown(run: Path) -> str:
    """The MI estimates of one MIMKD run per epoch (training-set means), beside its accuracy. Global:
    infoNCE in nats (≤ ln(K+1)); local and feature: the JSD bound (−ln 4 = −1.386 at independence, ≤ 0)."""
    rows = []
    for m in read_metrics(run):
        rows.append([m.epoch, *(fixed_cell(m.terms.get(k), 3) for k in MI_KEYS), fixed_cell(m.train_acc, 2),
                     fixed_cell(m.test_acc, 2)])
    return markdown(["epoch", "I_global (infoNCE, nats)", "I_local (JSD)", "I_feature (JSD)", "train acc %",
                     "test acc %"], rows, align=["r"] * 6)


def probe_markdown(runs: Iterable[Path]) -> str:
    """The linear-probe table (the paper's Table 3 layout): per student, method and seed, the run's own
    test accuracy and its probe test accuracy on each probe data set found in the runs."""
    results = [(r, run_arm(run)) for run in runs for r in read_probe_results(run)]
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    results.sort(key=lambda ra: (ra[0].source, ra[0].student, order.get(ra[1], 99), ra[0].seed))
    rows = [[Path(r.source).name, student_name(r.student), method_name(arm), r.seed,
             fixed_cell(r.run_test_accuracy, 2), fixed_cell(r.test_accuracy, 2), f"{r.weight_decay:g}"]
            for r, arm in results]
    return markdown(["probe data", "student", "method", "seed", "own test acc %", "probe test acc %", "probe L2"],
                    rows, align=["l", "l", "l", "r", "r", "r", "r"])


ABLATION_KEYS = (("alpha", "α (CE weight)"), ("lambda_global", "λg"), ("lambda_local", "λl"),
                 ("lambda_feature", "λf"))


def ablation_points(runs: Iterable[Path], protocol: Iterable[Path]) -> list[dict]:
    """MIMKD with terms left out or added, one dict per run, best first: its name, student, seed, loss
    weights (read from the run's resolved recipe), test accuracy, and the protocol's none / KD / MIMKD
    accuracies of the same student and seed (paired: same initialisation, data order, augmentation);
    "mimkd" is the protocol's MIMKD arm at the ablation run's own critic width."""
    reference = _seed_accuracies(protocol)
    points = []
    for run in runs:
        s = read_summary(run)
        options = load_recipe(RunDir(run).recipe).method.options
        ref = reference.get(s.student.model, {})
        arms = {"none": "none", "kd": "kd", "mimkd": run_arm(run).split("+")[0]}  # its width, without a logit term
        points.append({"run": run.name, "student": s.student.model, "seed": s.seed, "acc": s.final_test_acc,
                       "weights": {k: getattr(options, k, None) for k, _ in ABLATION_KEYS},
                       "reference": {m: ref.get(arm, {}).get(s.seed) for m, arm in arms.items()}})
    return sorted(points, key=lambda p: -p["acc"])


def ablation_markdown(runs: Iterable[Path], protocol: Iterable[Path]) -> str:
    """The ablation as a table: weights, accuracy and the gaps to the protocol's full MIMKD and KD runs
    of the same student and seed (`ablation_points`). Best run first."""
    rows = []
    for p in ablation_points(runs, protocol):
        weights = ["–" if p["weights"][k] is None else f"{p['weights'][k]:g}" for k, _ in ABLATION_KEYS]
        gaps = [p["reference"][m] for m in ("mimkd", "kd")]
        rows.append([p["run"], student_name(p["student"]), p["seed"], *weights, f"{p['acc']:.2f}",
                     *("–" if g is None else f"{p['acc'] - g:+.2f}" for g in gaps)])
    columns = ["run", "student", "seed", *(label for _, label in ABLATION_KEYS), "test acc %",
               "− MIMKD (all terms)", "− KD"]
    return markdown(columns, rows, align=["l", "l"] + ["r"] * (len(columns) - 2))


class FastPath(NamedTuple):
    """How a MIMKD run computed its local and feature terms (issue 17): the L of each (0: every
    location), the critics' precision (`_precision`) and how locations were drawn ("uniform" when
    none were). The feature term's L equals the local term's unless `feature_locations` set it."""
    locations: int
    precision: str
    sampling: str
    feature_locations: int

    def tag(self) -> str:
        """The suffix of its blocks' names in the results file: "" for L = 16 in fp32 (the first fast
        path, which keeps the first blocks' names), e.g. "-L32-stratified-bf16-global-fp32-feature-L64"."""
        return (("" if self.locations == 16 else f"-L{self.locations}")
                + ("" if self.sampling == "uniform" else f"-{self.sampling}")
                + ("" if self.precision == "fp32" else f"-{self.precision}")
                + ("" if self.feature_locations == self.locations else f"-feature-L{self.feature_locations}"))

    def label(self, width: int) -> str:
        """E.g. "width 512, L = 32 stratified, bf16 critics, global fp32, feature L = 64"."""
        drawn = "sampled" if self.sampling == "uniform" else self.sampling
        exact = " (exact)" if self.feature_locations == 0 else ""  # of the local and feature terms
        where = f"every location{exact}" if self.locations == 0 else f"L = {self.locations} {drawn}"
        return f"width {width}, {where}" + _precision_words(self.precision, " critics") + self._feature_words()

    def short_label(self) -> str:
        """E.g. "exact", "L = 32, stratified, bf16, global fp32, feature L = 64"."""
        return (("exact" if self.locations == 0 else f"L = {self.locations}")
                + ("" if self.sampling == "uniform" else f", {self.sampling}")
                + _precision_words(self.precision) + self._feature_words())

    def _feature_words(self) -> str:
        if self.feature_locations == self.locations:
            return ""
        return ", feature exact" if self.feature_locations == 0 else f", feature L = {self.feature_locations}"


EXACT_PATH = FastPath(0, "fp32", "uniform", 0)  # the paper's computation
GLOBAL_FP32 = "-global-fp32"  # appended to a precision when the global critic was kept in fp32


def _precision(o) -> str:
    """The critics' precision as the recipe asks it, e.g. "bf16", or "bf16-global-fp32" when the
    global critic stayed fp32 (`global_critic_precision`)."""
    kept = o.critic_precision != "fp32" and o.global_critic_precision == "fp32"
    return o.critic_precision + (GLOBAL_FP32 if kept else "")


def _path(run: Path, recipe=None) -> FastPath:
    """How a MIMKD run computed its local and feature terms. `recipe`: the run's, when the caller has it."""
    o = (recipe or load_recipe(RunDir(run).recipe)).method.options
    feature = o.feature_term_locations
    sampling = o.location_sampling if o.locations or feature else "uniform"
    return FastPath(o.locations, _precision(o), sampling, feature)


def _precision_words(precision: str, noun: str = "") -> str:
    """", bf16 critics" / ", bf16 critics, global fp32" ("" for fp32); `noun` after the precision."""
    if precision == "fp32":
        return ""
    base = precision.removesuffix(GLOBAL_FP32)
    return f", {base}{noun}" + (", global fp32" if precision != base else "")


def fast_critics_markdown(runs: Iterable[Path], protocol: Iterable[Path]) -> str:
    """MIMKD's exact computation against its sampled-location path (issue 17), one row per run: epochs
    done, last test accuracy and the MI estimates of its last epoch, beside the protocol's MIMKD run of
    the same student and seed (critic width 128, every location). An unfinished run is shown with the
    epochs it has and says so: its numbers are not final."""
    reference = _seed_accuracies(protocol)
    rows = []
    for run in runs:
        metrics = read_metrics(run)
        if not metrics:
            continue
        recipe = load_recipe(RunDir(run).recipe)
        o, last = recipe.method.options, metrics[-1]
        done = RunDir(run).summary.is_file()
        ref = reference.get(recipe.student.model, {}).get("mimkd-w128", {}).get(recipe.seed)
        path = _path(run, recipe)
        rows.append([(recipe.student.model, o.critic_hidden, path.locations == 0, path.locations,
                      path.precision != "fp32", path.precision, path.sampling != "uniform",
                      path.feature_locations != path.locations, recipe.seed),
                     [run.name, student_name(recipe.student.model), recipe.seed, path.label(o.critic_hidden),
                      f"{last.epoch} of {recipe.train.epochs}" + ("" if done else " (running)"),
                      fixed_cell(last.test_acc, 2), *(fixed_cell(last.terms.get(k), 3) for k in MI_KEYS),
                      fixed_cell(ref, 2)]])
    return markdown(["run", "student", "seed", "MIMKD critics", "epochs", "test acc %", "I_global", "I_local",
                     "I_feature", "protocol MIMKD (width 128) %"], [r for _, r in sorted(rows)],
                    align=["l", "l", "r", "l"] + ["r"] * 6)


def exact_sampled_pairs(runs: list[Path]) -> dict[FastPath, list[tuple[int, Path, Path]]]:
    """By fast path (`FastPath`): (seed, exact run, fast run) for every seed that has both, at the same
    student and critic width. The exact run is the paper's computation: every location, fp32 critics."""
    by_key: dict[tuple, dict[FastPath, Path]] = {}
    for run in runs:
        r = load_recipe(RunDir(run).recipe)
        by_key.setdefault((r.seed, r.student.model, r.method.options.critic_hidden), {})[_path(run, r)] = run
    pairs: dict[FastPath, list[tuple[int, Path, Path]]] = {}
    for key, by_path in sorted(by_key.items()):
        if EXACT_PATH not in by_path:
            continue
        for path in sorted(p for p in by_path if p != EXACT_PATH):
            pairs.setdefault(path, []).append((key[0], by_path[EXACT_PATH], by_path[path]))
    return dict(sorted(pairs.items()))


def exact_sampled_markdown(pairs: Iterable[tuple[int, Path, Path]]) -> str:
    """Issue 17's verdict table: per seed whose exact and sampled runs have both finished, the final
    test accuracy of each and the differences sampled − exact (accuracy and the three MI estimates of
    the last epoch); then their mean ± std over those seeds (the sample std, shown with two or more),
    and the seed-to-seed std of the exact runs' own final figures: the seed noise a difference is
    judged against."""
    rows, deltas, finals = [], [], []
    for seed, exact, sampled in pairs:
        if not (RunDir(exact).summary.is_file() and RunDir(sampled).summary.is_file()):
            continue
        e, f = read_metrics(exact)[-1], read_metrics(sampled)[-1]
        d = [f.test_acc - e.test_acc, *(f.terms[k] - e.terms[k] for k in MI_KEYS)]
        deltas.append(d)
        finals.append([e.test_acc, *(e.terms[k] for k in MI_KEYS)])
        rows.append([seed, fixed_cell(e.test_acc, 2), fixed_cell(f.test_acc, 2), f"{d[0]:+.2f}",
                     *(f"{v:+.3f}" for v in d[1:])])
    if len(deltas) > 1:
        cols = list(zip(*deltas, strict=True))
        rows.append([f"mean ± std ({len(deltas)} seeds)", "", "",
                     *(f"{statistics.mean(c):+.{2 if i == 0 else 3}f} ± {statistics.stdev(c):.{2 if i == 0 else 3}f}"
                       for i, c in enumerate(cols))])
        spread = [statistics.stdev(c) for c in zip(*finals, strict=True)]
        rows.append([f"seed std of the exact runs ({len(finals)} seeds)", "", "",
                     *(f"{v:.{2 if i == 0 else 3}f}" for i, v in enumerate(spread))])
    return markdown(["seed", "exact %", "sampled %", "Δ acc", "Δ I_global", "Δ I_local", "Δ I_feature"], rows,
                    align=["l"] + ["r"] * 6)


def paired_trace_markdown(a: Path, b: Path) -> str:
    """Two runs of the same seed and critic width side by side, epoch by epoch (the epochs both have):
    test accuracy and MI estimates, and the difference b − a. Columns name each run's path: "exact"
    (every location) or "L = 16" (sampled), with ", bf16" for bf16 critics."""
    ma, mb = {m.epoch: m for m in read_metrics(a)}, {m.epoch: m for m in read_metrics(b)}
    rows = []
    for epoch in sorted(set(ma) & set(mb)):
        cells = []
        for (x, y), digits in (((ma[epoch].test_acc, mb[epoch].test_acc), 2),
                               *(((ma[epoch].terms.get(k), mb[epoch].terms.get(k)), 3) for k in MI_KEYS)):
            cells += [fixed_cell(x, digits), fixed_cell(y, digits),
                      "–" if x is None or y is None else f"{y - x:+.{digits}f}"]
        rows.append([epoch, *cells])
    la, lb = (_path(r).short_label() for r in (a, b))
    columns = ["epoch"]
    for name in ("test acc %", "I_global", "I_local", "I_feature"):
        columns += [f"{name}, {la}", f"{name}, {lb}", "Δ"]
    return markdown(columns, rows, align=["r"] * len(columns))
