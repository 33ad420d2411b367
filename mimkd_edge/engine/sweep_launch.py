"""A sweep on a cluster (`sweep --launcher slurm`) or on this machine through the same path
(`--launcher local`, `--launcher debug`): submitit runs each stage's unfinished runs as one job array.

Stages run in order, as in the sequential sweep: on SLURM a stage's array is submitted at once, held
by an `afterok` dependency on the arrays of the stages before it (the command returns when every stage
is queued); submitit's local and debug executors cannot hold a job on another, so there the command
waits for each stage before it submits the next, and returns when the sweep is done.

Each job trains one run exactly as the sequential sweep does (`run_sweep` on that run: the same run
directory, skipped when finished with the sweep's recipe, resumed when it holds a checkpoint), from the
directory the sweep was launched in. A job that SLURM preempts or that reaches its time limit is
checkpointed by submitit (`TrainRun.checkpoint`) and requeued; the requeued job finds the run's last
epoch checkpoint and resumes from it. A job given more than one GPU runs one process per GPU, and
submitit's TorchDistributedEnvironment hands them to the trainer as a torchrun would (DDP, NCCL).

submitit is imported only here, and only when a launcher is asked for: training never needs it
(`pip install -e '.[cluster]'`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .sweep import Job, SweepLauncher, check_finished_recipes, run_sweep

LAUNCHERS = ("slurm", "local", "debug")
LOG_FOLDER = "submitit"  # inside the sweep's out folder: submitit's pickles and each job's stdout/stderr


@dataclass(frozen=True)
class TrainRun:
    """The function each job runs (submitit pickles it): train one run of the sweep, from `cwd`."""

    cwd: str
    data_dir: str | None = None
    processes: int = 1  # tasks of the job: one per GPU, joined into one DDP process group
    threads: int | None = None  # torch's CPU threads per process ([launcher] cpus_per_task); none: torch's default

    def __call__(self, job: Job) -> str:
        os.chdir(self.cwd)  # recipes, teacher checkpoints and run directories are relative to it
        if self.threads:  # jobs running side by side must not each take every core
            import torch

            torch.set_num_threads(self.threads)
        if self.processes > 1:  # RANK, WORLD_SIZE, MASTER_ADDR, ... for the trainer, as torchrun sets them
            from submitit.helpers import TorchDistributedEnvironment

            TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        from .trainer import fit

        ran = run_sweep([job], lambda j, resume: fit(j.recipe, j.out, resume=resume, data_dir=self.data_dir))
        return "trained" if ran else "finished"

    def checkpoint(self, job: Job) -> Any:
        """submitit calls this when SLURM preempts the job or its time is up: requeue the same run,
        which resumes from the run's latest epoch checkpoint (what `fit` saved after every epoch)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, job)


def launch_sweep(jobs: list[Job], launcher: str, resources: SweepLauncher, out: Path, name: str,
                 data_dir: str | None = None) -> tuple[list[list[Any]], Path]:
    """Run (local, debug) or queue (SLURM) the sweep's unfinished `jobs` from this working directory;
    returns the submitted jobs per stage and the folder of their logs (`out`/submitit)."""
    check_finished_recipes(jobs)  # a finished run of another recipe stops the sweep before anything is queued
    logs = out / LOG_FOLDER
    executor = make_executor(launcher, resources, logs, name)
    train = TrainRun(os.getcwd(), data_dir, processes=max(1, resources.gpus_per_job), threads=resources.cpus_per_task)
    return launch(jobs, executor, train), logs


def require_launcher(launcher: str) -> Any:
    """The submitit module, where `launcher` can run here; else a one-line UserError saying what is missing."""
    try:
        import submitit
    except ImportError:
        raise UserError(f"--launcher {launcher}: needs submitit (pip install -e '.[cluster]', "
                        "or pip install 'submitit>=1.5')") from None
    if launcher == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise UserError("--launcher slurm: no SLURM here (srun is not on PATH); run it on the cluster's login "
                        "node, or --launcher local to run the jobs on this machine")
    return submitit


def make_executor(launcher: str, resources: SweepLauncher, folder: Path, name: str) -> Any:
    """submitit's executor for `launcher` with the sweep's resources (per job: one task per GPU, see
    `TrainRun.processes`); its logs and pickles go to `folder`/<job id>/."""
    submitit = require_launcher(launcher)
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=launcher)
    gpus = resources.gpus_per_job
    executor.update_parameters(name=name, timeout_min=resources.time_min, gpus_per_node=gpus,
                               tasks_per_node=max(1, gpus), cpus_per_task=resources.cpus_per_task,
                               mem_gb=resources.mem_gb, slurm_partition=resources.partition,
                               slurm_array_parallelism=resources.array_parallelism,
                               slurm_setup=list(resources.setup) or None)
    return executor


def launch(jobs: list[Job], executor: Any, train: TrainRun) -> list[list[Any]]:
    """Submit the unfinished `jobs`, one array per stage, each stage after the ones before it; returns
    the submitted jobs per stage. Waits for the whole sweep unless the executor is SLURM's."""
    stages = sorted({j.stage for j in jobs})
    holds = executor.cluster == "slurm"  # only SLURM can hold a job until others succeed
    submitted: list[list[Any]] = []
    for stage in stages:
        todo = [j for j in jobs if j.stage == stage and not j.finished]
        if not todo:
            continue
        before = [s for stage_jobs in submitted for s in stage_jobs]
        if before and holds:
            ids = sorted({s.job_id.split("_")[0] for s in before})  # an array's id holds all of its tasks
            executor.update_parameters(slurm_dependency="afterok:" + ":".join(ids))
        elif before:
            wait(submitted[-1])
        submitted.append(executor.map_array(train, todo))
    if not holds and submitted:
        wait(submitted[-1])
    return submitted


def wait(stage_jobs: list[Any]) -> None:
    """Wait for a stage's jobs; a failed one is a one-line UserError naming its run and its log."""
    for submitted in stage_jobs:
        error = submitted.exception()  # waits for the job
        if error is not None:
            run = submitted.submission().args[0].name
            lines = [ln for ln in str(error).splitlines() if ln.strip()]
            raise UserError(f"sweep run {run} (job {submitted.job_id}) failed: {lines[-1] if lines else error}; "
                            f"its log: {submitted.paths.stderr}")
