"""A stopped run leaves nothing behind. SIGTERM to the `dvc` process alone (what `timeout`, a CI
time limit, `systemctl stop` or a plain `kill` send; Ctrl-C in a terminal signals the whole
process group instead) must end the stage it was running, with its torchrun ranks: no orphan
writes outputs behind a later `dvc repro`. Each test stops a long training run mid-epoch, then
checks by pid that no process of the stage is left, that the workspace no longer changes, and
that the next `dvc repro` (with the project's params again, so that DVC's run cache can restore
the tiny build's results) leaves `dvc status` clean.
"""
import signal
import subprocess
import sys
import time
from typing import NamedTuple

import psutil

LONG = 500  # epochs of the tiny MLP: a minute or more, far longer than any wait below
GONE_WITHIN_S = 5
QUIET_FOR_S = 2


def long_training(project, nproc: int = 1) -> None:
    params = project.params()
    params["train"]["mlp"]["epochs"] = LONG
    params["train"]["nproc"] = nproc
    project.set_params(params)


class Seen(NamedTuple):
    """A stage process as it was before the stop: once stopped it may be a zombie, whose
    command line can no longer be read."""
    process: psutil.Process
    name: str
    cmdline: list[str]


def stop_mid_epoch(project, tmp_path, shell: str, *dvc_args) -> list[Seen]:
    """Start `dvc *dvc_args` with SHELL=`shell` (DVC runs the stage's cmd as `$SHELL -c cmd`),
    wait for the stage's first epoch, SIGTERM the `dvc` process alone; returns the processes
    that were under it."""
    log = tmp_path / "dvc.log"
    with open(log, "w") as out:
        dvc = subprocess.Popen([sys.executable, "-m", "dvc", *dvc_args], cwd=project.path,
                               env={**project.env, "SHELL": shell}, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "train: epoch 1:" not in log.read_text():
        assert dvc.poll() is None and time.monotonic() < deadline, f"no epoch began:\n{log.read_text()}"
        time.sleep(0.1)
    stage = [Seen(p, p.name(), p.cmdline()) for p in psutil.Process(dvc.pid).children(recursive=True)]
    assert stage, "no stage process under dvc"
    dvc.send_signal(signal.SIGTERM)
    try:
        dvc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill([Seen(psutil.Process(dvc.pid), "dvc", []), *stage])   # a failing test leaves no 500-epoch training behind
        raise
    return stage


def kill(processes: list[Seen]) -> None:
    for seen in processes:
        try:
            seen.process.kill()
        except psutil.NoSuchProcess:
            pass


def trainers(stage: list[Seen]) -> list[Seen]:
    return [p for p in stage if "src.train" in p.cmdline]


def alive(process: psutil.Process) -> bool:
    """Running and the same process (is_running compares the start time: a reused pid is not it);
    a zombie has ended, whoever reaps it."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_nothing_left(project, stage: list[Seen]) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while any(alive(p.process) for p in stage) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in stage if alive(p.process)]
    described = [f"{p.process.pid} {' '.join(p.cmdline)}" for p in left]
    kill(left)   # the failure below is reported; the processes are not left to run under the rest of the suite
    assert not described, f"still running {GONE_WITHIN_S} s after dvc ended: {described}"
    before = snapshot(project)
    time.sleep(QUIET_FOR_S)
    assert snapshot(project) == before, "the workspace changed after the stage was stopped"
    assert not [p for p in project.path.rglob("*.tmp") if ".dvc" not in p.parts], "a write's temporary file was left"


def snapshot(project) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(project.path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in project.path.rglob("*") if p.is_file() and ".git" not in p.parts}


def assert_next_repro_is_clean(project) -> None:
    # HEAD's, not the index's: `dvc exp run` stages its params.yaml before it runs
    project.run("git", "checkout", "HEAD", "--", "params.yaml")
    project.repro()
    assert project.dvc("status").stdout.strip() == "Data and pipelines are up to date."


# Each test runs one kind of shell. Bash execs a lone command, so the stage is dvc's child; dash
# (Debian's /bin/sh, which DVC runs when SHELL is unset, as on CI) stays between them.

def test_stopping_dvc_repro_stops_its_stage(tiny, tmp_path):
    long_training(tiny)
    stage = stop_mid_epoch(tiny, tmp_path, "/bin/bash", "repro", "train@mlp")
    assert len(stage) == 1, [p.cmdline for p in stage]
    assert_nothing_left(tiny, stage)
    assert not (tiny.path / "models/mlp.pth").exists()  # DVC removed it before the run; nothing wrote it since
    assert_next_repro_is_clean(tiny)


def test_stopping_dvc_repro_stops_the_torchrun_launcher_and_its_ranks(tiny, tmp_path):
    long_training(tiny, nproc=2)
    stage = stop_mid_epoch(tiny, tmp_path, "/bin/dash", "repro", "train@mlp")
    assert [p.name for p in stage if p not in trainers(stage)] == ["dash"], [p.cmdline for p in stage]
    assert len(trainers(stage)) == 3, [p.cmdline for p in stage]  # the launcher and two ranks
    assert_nothing_left(tiny, stage)
    assert_next_repro_is_clean(tiny)


def test_stopping_dvc_exp_run_stops_its_stage(tiny, tmp_path):
    stage = stop_mid_epoch(tiny, tmp_path, "/bin/sh", "exp", "run", "-S", f"train.mlp.epochs={LONG}", "train@mlp")
    assert_nothing_left(tiny, stage)
    assert_next_repro_is_clean(tiny)
