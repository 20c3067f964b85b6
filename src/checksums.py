"""The four canonical MNIST files: their MD5 and size, and the check that a file is one of them.

Its own module, because both the download and the preprocess stage verify the raw files.
"""
from pathlib import Path

from src.errors import PipelineError
from src.fileio import md5_of

# MD5 and size of the uncompressed canonical files (torchvision's layout and names).
CANONICAL = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", 47_040_016),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", 60_008),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", 7_840_016),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", 10_008),
}


class ChecksumError(PipelineError):
    pass


def verify(path: Path, name: str) -> None:
    """Raise ChecksumError unless `path` holds exactly the canonical `name`."""
    expected, size = CANONICAL[name]
    actual = md5_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: MD5 mismatch for {name}: expected {expected}, got {actual} "
            f"({path.stat().st_size} bytes, expected {size})"
        )


def is_valid(path: Path, name: str) -> bool:
    try:
        verify(path, name)
        return True
    except (ChecksumError, OSError):
        return False
