"""Records which params.yaml keys, and which files, each stage reads while `dvc repro` really runs it.

Put this folder on PYTHONPATH and name a log file in PARAMS_READ_LOG: Python imports this module
at start-up in every process, the stages' included. When a stage imports src.config, its
`load_params` is wrapped so that the params come as a `Recording`; an audit hook (PEP 578) sees
every file the process opens for reading. At exit the stage's process appends one JSON line to
the log: {"stage": DVC_STAGE (set by DVC for each command), "reads": [...], "opened": [...]}, the
files as paths relative to the stage's directory (the project's), those outside it left out; a
worker process it forks appends a line for each file as it first opens it.
tests/conftest.py's tiny build runs this way; tests/test_stage_declarations.py reads the log.
"""
import atexit
import importlib.abc
import importlib.machinery
import json
import os
import sys

WATCHED = "src.config"


class Recording(dict):
    """A params mapping that records the dotted path of every value read from it. Reading a
    nested mapping records nothing until a value inside it is read; iterating over a mapping's
    values reads it whole."""

    def __init__(self, data: dict, path: str, reads: set[str]):
        super().__init__(data)
        self._path, self._reads = path, reads

    def _key(self, key) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def _read(self, key, value):
        if isinstance(value, dict):
            return Recording(value, self._key(key), self._reads)
        self._reads.add(self._key(key))
        return value

    def __getitem__(self, key):
        return self._read(key, super().__getitem__(key))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def _whole(self):
        self._reads.add(self._path)

    def items(self):
        self._whole()
        return super().items()

    def values(self):
        self._whole()
        return super().values()

    def __iter__(self):
        self._whole()
        return super().__iter__()


def record_reads(config_module, reads: set[str]) -> None:
    """Make `config_module.load_params` hand out its params as a Recording into `reads`."""
    load_params = config_module.load_params
    config_module.load_params = lambda *args, **kwargs: Recording(load_params(*args, **kwargs), "", reads)


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Finds src.config as Python would, and wraps load_params once the module has run."""

    def __init__(self, reads: set[str]):
        self.reads = reads

    def find_spec(self, name, path, target=None):
        if name != WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            record_reads(module, self.reads)
        spec.loader.exec_module = exec_module
        return spec


def record_opened(opened: set[str], root: str, first_time=lambda path: None):
    """An audit hook that adds to `opened` each file under `root` opened for reading only, and
    calls `first_time(path)` when it first sees it."""
    def hook(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = args
        reading = ("r" in mode and "+" not in mode) if mode else (flags & 3) == os.O_RDONLY
        full = os.path.abspath(os.fsdecode(path))
        if reading and full.startswith(root + os.sep) and (inside := os.path.relpath(full, root)) not in opened:
            opened.add(inside)
            first_time(inside)
    return hook


def _start(log: str, stage: str) -> None:
    reads: set[str] = set()
    opened: set[str] = set()
    forked = []   # a worker forked by multiprocessing's pools (src/parallel.py) ends without atexit

    def write(reads=reads, opened=opened):
        if reads or opened:
            with open(log, "a") as out:
                out.write(json.dumps({"stage": stage, "reads": sorted(reads), "opened": sorted(opened)}) + "\n")

    def in_a_worker(path):
        if forked:   # it writes each file as it first opens it
            write(set(), {path})

    sys.meta_path.insert(0, _WrapOnImport(reads))
    sys.addaudithook(record_opened(opened, os.getcwd(), in_a_worker))
    atexit.register(write)
    os.register_at_fork(after_in_child=lambda: forked.append(True))


if os.environ.get("PARAMS_READ_LOG") and os.environ.get("DVC_STAGE"):
    _start(os.environ["PARAMS_READ_LOG"], os.environ["DVC_STAGE"])
