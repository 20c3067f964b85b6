"""Where the pipeline's files live, and atomic writes: every output appears whole or not at all."""
import hashlib
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

RAW_DIR = Path("data/raw/MNIST/raw")  # torchvision's layout: MNIST(root="data/raw") reads it
PROCESSED_DIR = Path("data/processed")
# The temporary files and folders of writes in progress, so that a stage stopped mid-write
# (src/cli.py) can remove them and leave nothing behind.
_in_progress: set[str] = set()


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
    _in_progress.add(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        _in_progress.discard(tmp)
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def scratch_dir(parent):
    """A temporary folder inside `parent` for the block, removed after it (or when the stage is stopped)."""
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        _in_progress.add(tmp)
        try:
            yield Path(tmp)
        finally:
            _in_progress.discard(tmp)


def remove_in_progress() -> None:
    """Remove the temporary files and folders of the writes in progress: what a stopped stage calls."""
    for tmp in list(_in_progress):
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_torch(obj, path) -> None:
    """torch.save, atomically and byte-reproducibly. Through a buffer: torch.save names the
    archive inside the file after the file, and the atomic write's temporary name is random."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def read_summary(path) -> dict:
    """A training's DVCLive summary (its metrics.json); empty where the run logged none."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}


def write_json(path, obj):
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def md5_of(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
