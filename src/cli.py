"""Common entry-point behaviour for the stages: logging, one-line errors for expected failures,
and a lifetime tied to the `dvc` that started them."""
import ctypes
import logging
import os
import signal
import sys
import threading
import time

from src.errors import PipelineError
from src.fileio import remove_in_progress

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 0.5  # the portable watch's interval, where prctl is not available


def run_stage(main, *args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    end_with_parent()
    try:
        main(*args)
    except (PipelineError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def end_with_parent() -> None:
    """Stop this process, writing nothing more, when the process that started it ends.

    `dvc repro` that is killed (by `timeout`, a CI limit, `kill`, `dvc queue kill`) does not stop
    its stage: left alone, the stage would run on as an orphan and write its outputs behind the
    back of a later `dvc repro`. On Linux the kernel sends SIGTERM the moment the parent ends
    (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent's pid. SIGTERM removes the
    temporary files of writes in progress and exits at once: no `finally` or context manager
    runs, so nothing (DVCLive's summary, a model file) is written after the signal. (Why prctl,
    measured: docs/team-work.md#stopping-a-run.)"""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _stop)
    if not _kernel_signals_parent_death():
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # it ended before the signal was armed
        _stop(signal.SIGTERM, None)


def _kernel_signals_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop(signum, frame) -> None:
    remove_in_progress()
    name = signal.Signals(signum).name
    os.write(sys.stderr.fileno(), f"stopped by {name}: nothing more is written\n".encode())
    os._exit(128 + signum)
