import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the stages resolve params.yaml, data/ and models/ from the project root

from src.download import CANONICAL, RAW_DIR, fetch, is_valid  # noqa: E402


@pytest.fixture(scope="session")
def raw_mnist(request) -> Path:
    """A folder with the four verified MNIST files: the project's own if `dvc repro` made them,
    else fetched once into pytest's cache (kept between runs, outside the project's outputs)."""
    if all(is_valid(RAW_DIR / name, name) for name in CANONICAL):
        return ROOT / RAW_DIR
    cached = Path(request.config.cache.mkdir("mnist_raw"))
    fetch(cached)
    return cached


def copy_raw(raw_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in CANONICAL:
        shutil.copyfile(raw_dir / name, target / name)
