"""Work on items one by one, shared among processes, the results in order.

The writers' stages (src/writer_lines.py, src/writer_digits.py) draw thousands of items, each from
its own seed: the work splits into chunks of consecutive indices, one process per core, and the
items come back in index order, so that the output is the same bytes whatever the CPU. The stage
evaluate_writers reads thousands of images likewise, in chunks of the images (src/reader_scores.py).
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


def _each(function, items: list) -> list:
    return [function(item) for item in items]


def made_in_order(make, count: int, cfg: dict, processes: int) -> list:
    """[make(i, cfg) for i in range(count)], shared among `processes` (`make` must be a module-level
    function, so that the pool can send it)."""
    chunks = [(start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    return _in_order(partial(_chunk, make, cfg), chunks, processes)


def mapped_in_order(function, items: list, processes: int, chunk: int = CHUNK,
                    start=None, start_args: tuple = ()) -> list:
    """[function(item) for item in items], shared among `processes`, each chunk of items sent once
    (`function` and `start` module-level functions); `start(*start_args)` first runs once in each
    process (in this one, if `processes` is 1): what every item needs, made once per process."""
    chunks = [items[first:first + chunk] for first in range(0, len(items), chunk)]
    return _in_order(partial(_each, function), chunks, processes, start, start_args)


def _in_order(task, chunks: list, processes: int, start=None, start_args: tuple = ()) -> list:
    if processes == 1:
        if start:
            start(*start_args)
        return [item for chunk in map(task, chunks) for item in chunk]
    with ProcessPoolExecutor(processes, initializer=start, initargs=start_args) as pool:
        return [item for chunk in pool.map(task, chunks) for item in chunk]
