"""Common entry-point behaviour for the stages: logging, one-line errors for expected failures,
and a lifetime tied to the `dvc` that started them."""
import ctypes
import logging
import os
import signal
import sys
import threading
import time

import psutil

from src.errors import PipelineError
from src.fileio import remove_in_progress

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 0.5  # the watch thread's interval, where the kernel's signal cannot reach
# Shells that can stand between `dvc` and a stage (DVC runs each cmd as `$SHELL -c cmd`)
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox", "fish"})


def run_stage(main, *args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    end_with_parent()
    try:
        main(*args)
    except (PipelineError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run_stage_command(main) -> None:
    """run_stage for a stage that takes no arguments, run as a command (`python -m src.<stage>`):
    `--help` prints its docstring and runs nothing, and any other argument is refused. Ignored,
    an argument would leave the stage running, overwriting its outputs behind DVC's back."""
    given, module = sys.argv[1:], sys.modules[main.__module__]
    if given in (["-h"], ["--help"]):
        print((module.__doc__ or "").strip())
        sys.exit(0)
    if given:
        name = module.__spec__.name if module.__spec__ else main.__module__
        print(f"error: python -m {name} takes no arguments, got {' '.join(given)} (its settings are in params.yaml; "
              "--help says what it does)", file=sys.stderr)
        sys.exit(2)
    run_stage(main)


def end_with_parent() -> None:
    """Stop this process, writing nothing more, when the process that started it ends.

    `dvc repro` that is killed (by `timeout`, a CI limit, `kill`, `dvc queue kill`) does not stop
    its stage: left alone, the stage would run on as an orphan and write its outputs behind the
    back of a later `dvc repro`. On Linux the kernel sends SIGTERM the moment the parent ends
    (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent's pid. DVC runs a stage's cmd
    through `$SHELL -c` (`/bin/sh` when SHELL is unset), and a shell such as Debian's dash stays
    between `dvc` and the stage instead of exec-ing it: then the thread watches the shell's
    parent too, since a shell outlives the `dvc` that started it. SIGTERM removes the temporary
    files of writes in progress and exits at once: no `finally` or context manager runs, so
    nothing (DVCLive's summary, a model file) is written after the signal. (Why prctl, measured:
    docs/team-work.md#stopping-a-run.)"""
    signal.signal(signal.SIGTERM, _stop)
    parent = os.getppid()
    kernel_watches = _kernel_signals_parent_death()
    shell = _wrapping_shell()
    if shell is not None:
        _watch_in_thread(shell, shell.ppid())
    elif not kernel_watches:
        _watch_in_thread(psutil.Process(), parent)
    if os.getppid() != parent:  # it ended before the signal was armed
        _stop(signal.SIGTERM, None)


def _kernel_signals_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0


def _wrapping_shell() -> psutil.Process | None:
    """The parent when it is a `<shell> -c …` that only waits for this process, else None."""
    try:
        parent = psutil.Process().parent()
        if parent is not None and parent.name() in SHELLS and "-c" in parent.cmdline()[1:]:
            return parent
    except psutil.Error:  # gone already, or not ours to inspect: the kernel's signal still holds
        pass
    return None


def _watch_in_thread(process: psutil.Process, parent: int) -> None:
    threading.Thread(target=_watch, args=(process, parent), name="parent-watch", daemon=True).start()


def _watch(process: psutil.Process, parent: int) -> None:
    """SIGTERM this process once `process` has a new parent (its own ended: the kernel hands its
    children on at once, even while it stays a zombie) or has ended."""
    try:
        while process.ppid() == parent:
            time.sleep(PARENT_POLL_S)
    except psutil.NoSuchProcess:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _stop(signum, frame) -> None:
    remove_in_progress()
    name = signal.Signals(signum).name
    os.write(sys.stderr.fileno(), f"stopped by {name}: nothing more is written\n".encode())
    os._exit(128 + signum)
