"""Items made one by one from their index, shared among processes, in order.

The writers' stages (src/writer_lines.py, src/writer_digits.py) draw thousands of items, each from
its own seed: the work splits into chunks of consecutive indices, one process per core, and the
items come back in index order, so that the output is the same bytes whatever the CPU.
"""
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial

CHUNK = 500   # items per task of the process pool


def workers() -> int:
    """One process per core this process may run on, however many: a GPU machine's cores draw
    what its GPU will train on (benchmarks/notes/hardware.md#the-gpu-one-nvidia-h200-2026-12-04)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _chunk(make, cfg: dict, bounds: tuple[int, int]) -> list:
    return [make(i, cfg) for i in range(*bounds)]


def made_in_order(make, count: int, cfg: dict, processes: int) -> list:
    """[make(i, cfg) for i in range(count)], shared among `processes` (`make` must be a module-level
    function, so that the pool can send it)."""
    chunks = [(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    task = partial(_chunk, make, cfg)
    if processes == 1:
        return [item for chunk in map(task, chunks) for item in chunk]
    with ProcessPoolExecutor(processes) as pool:
        return [item for chunk in pool.map(task, chunks) for item in chunk]
