"""Training on several processes: torchrun's workers, their process group, and launching them.

With `train.nproc: N > 1` the train stage re-runs itself as N torchrun workers on this machine
(`launch`); across machines, torchrun is started by hand on each one (docs/distributed-training.md).
Every worker is one rank of a DistributedDataParallel run: gloo on CPU, NCCL on CUDA (one GPU per
rank). Outside torchrun, or under torchrun with a single process, nothing here changes the
single-process path.
"""
import datetime
import json
import logging
import os
import signal
import sys
import time
import uuid
from contextlib import contextmanager

import torch
import torch.distributed as dist

from src.cli import end_with_parent
from src.errors import PipelineError

# A collective that waits longer than this fails instead of hanging: every rank does the same
# work between collectives, so a healthy peer is never minutes late.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)
# A worker's exit status tells the launcher which failure to report when several ranks fail.
EXIT_ERROR = 2  # an expected failure (PipelineError): its message is in torchrun's error file
EXIT_PEER_LOST = 3  # a collective failed because another rank died: a consequence, not a cause

log = logging.getLogger("distributed")


def is_worker() -> bool:
    """Whether this process was started by torchrun (or another launcher setting its variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def threads_per_process(processes: int) -> int:
    """The machine's cores shared out evenly, so that N processes do not oversubscribe them."""
    return max(1, len(os.sched_getaffinity(0)) // processes)


def _rank_device(device: torch.device) -> torch.device:
    if device.type != "cuda":
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if local_rank >= torch.cuda.device_count():
        raise PipelineError(f"local rank {local_rank} needs a CUDA device of its own, but this machine has "
                            f"{torch.cuda.device_count()}: start at most that many processes per machine")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


@contextmanager
def process_group(device: torch.device):
    """Join torchrun's process group for the duration and yield this rank's device; outside
    torchrun, or with one process, yield `device` unchanged and join nothing."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        yield device
        return
    torch.set_num_threads(threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", 1))))
    device = _rank_device(device)
    dist.init_process_group(dist.get_default_backend_for_device(device), timeout=COLLECTIVE_TIMEOUT)
    log.info("%d processes (%s), %d threads each", dist.get_world_size(), dist.get_backend(), torch.get_num_threads())
    yield device
    # Not in a `finally`: after a failure the process exits and torchrun stops the other ranks;
    # tearing down a group whose peers are gone can block.
    dist.destroy_process_group()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in DistributedDataParallel when there are several ranks (DDP broadcasts rank 0's
    parameters and buffers, so every rank starts from the same weights), else `model` itself."""
    if world_size() == 1:
        return model
    device = next(model.parameters()).device
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def batch_slice(batch_size: int) -> slice:
    """This rank's contiguous, equal share of a global batch."""
    processes = world_size()
    if batch_size % processes:
        raise PipelineError(f"a batch of {batch_size} images does not split evenly over {processes} processes: "
                            "make the batch size a multiple of the number of processes")
    size = batch_size // processes
    return slice(rank() * size, (rank() + 1) * size)


def shard(n: int) -> slice:
    """This rank's contiguous part of n items; the parts differ in size by at most one and cover
    every item exactly once (no padding, unlike DistributedSampler)."""
    processes, r = world_size(), rank()
    return slice(n * r // processes, n * (r + 1) // processes)


def all_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor over the ranks, in place."""
    for tensor in tensors:
        dist.all_reduce(tensor)


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics): each rank updates its own
    from its own batches, and the model every rank evaluates must be the one rank 0 saves."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


# --- The workers' side of failures ---

def run_worker(main, *args) -> None:
    """`src.cli.run_stage` for a torchrun worker: rank 0 logs, the others only warn; an expected
    failure goes to torchrun's error file, for the launcher to report as one line."""
    level = logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING
    logging.basicConfig(level=level, format="%(name)s: %(message)s", stream=sys.stderr)
    end_with_parent()  # a stopped or killed launcher leaves no rank running
    try:
        main(*args)
    except (PipelineError, FileNotFoundError) as error:
        _exit_with(EXIT_ERROR, str(error))
    except RuntimeError as error:
        if not _lost_peer(error):
            raise
        _exit_with(EXIT_PEER_LOST, " ".join(str(error).split()))
    except KeyboardInterrupt:  # torchrun passes Ctrl-C on to the ranks; the launcher reports it
        sys.exit(128 + signal.SIGINT)
    _end_rank(0)


def _lost_peer(error: RuntimeError) -> bool:
    """Whether a collective failed because another rank went away. DDP's backward raises gloo's
    transport errors as plain RuntimeErrors, so their source is in the message."""
    return isinstance(error, dist.DistError) or "/gloo/" in str(error) or "NCCL" in str(error)


def _exit_with(status: int, message: str) -> None:
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if error_file:
        with open(error_file, "w") as file:
            json.dump({"message": message, "timestamp": int(time.time())}, file)
    else:
        print(f"error: {message}", file=sys.stderr)
    _end_rank(status)


def _end_rank(status: int) -> None:
    """Ends a rank, finished or failed, without the interpreter's teardown. There, under load, a
    finished rank whose process group was destroyed was seen to abort in C++ ("terminate called
    without an active exception", SIGABRT) after its outputs were written
    (benchmarks/notes/testing.md#2026-12-05-twenty-second-session-the-last-minute-on-one-worker);
    and a rank that lost its peer once outlived torchrun's SIGTERM until its SIGKILL 30 s later,
    most likely waiting in gloo's teardown: inferred, not reproduced
    (benchmarks/notes/testing.md#2026-12-05-twenty-eighth-session-evaluate_writers-reads-on-two-processes)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# --- The launcher ---

def launch(nproc: int, *python_args: str) -> None:
    """Run `python <python_args>` as `nproc` torchrun workers on this machine (rendezvous on a
    free port of 127.0.0.1) and wait for them. If any fails, torchrun stops the others and this
    raises a PipelineError naming the failure that caused it."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch

    _quiet_torchrun_logs()
    os.environ["OMP_NUM_THREADS"] = str(threads_per_process(nproc))  # torchrun would default to 1
    args = torchrun.parse_args([
        "--nnodes=1", f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.1",
        "--rdzv-backend=c10d", "--rdzv-endpoint=127.0.0.1:0", f"--rdzv-id={uuid.uuid4().hex}",
        "--no-python", sys.executable, *python_args])
    config, command, command_args = torchrun.config_from_args(args)
    try:
        elastic_launch(config, command)(*command_args)
    except ChildFailedError as error:
        raise PipelineError(describe_failure(error.failures, nproc)) from None
    except SignalException as error:  # Ctrl-C or a kill: torchrun has already stopped the ranks
        raise PipelineError(f"training stopped by {error.sigval.name}; its {nproc} processes were stopped") from None


def _quiet_torchrun_logs() -> None:
    # torchrun's agent logs every start, stop and failure at length; the launcher reports the
    # one failure that matters itself.
    for name in ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def describe_failure(failures: dict, nproc: int) -> str:
    """One line about the failure (a torchrun ProcessFailure per failed rank) that caused the
    others: an expected error first, then a killed rank, then a crash; last, the ranks torchrun
    stopped with SIGTERM because of it, and those that lost their peer."""
    def cause_first(item):
        rank_, failure = item
        if failure.exitcode in (EXIT_ERROR, EXIT_PEER_LOST):
            order = 0 if failure.exitcode == EXIT_ERROR else 4
        elif failure.exitcode < 0:
            order = 3 if -failure.exitcode == signal.SIGTERM else 1
        else:
            order = 2
        return order, failure.timestamp, rank_

    rank_, failure = min(failures.items(), key=cause_first)
    who = f"rank {rank_} of {nproc}"
    if failure.exitcode == EXIT_ERROR:
        return f"{who}: {failure.message}"
    if failure.exitcode == EXIT_PEER_LOST:
        return f"{who} lost contact with the other ranks: {failure.message}"
    if failure.exitcode < 0:
        return f"{who} was killed by {failure.signal_name()}; the other ranks were stopped"
    return f"{who} failed with exit status {failure.exitcode} (its traceback is above); the other ranks were stopped"
