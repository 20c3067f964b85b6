"""Common entry-point behaviour for the stages: logging, and one-line errors for expected failures."""
import logging
import sys

from src.config import ParamsError
from src.download import ChecksumError
from src.idx import IdxError

EXPECTED_ERRORS = (ParamsError, ChecksumError, IdxError, FileNotFoundError, ValueError, RuntimeError)


def run_stage(main, *args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        main(*args)
    except EXPECTED_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
