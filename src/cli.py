"""Common entry-point behaviour for the stages: logging, and one-line errors for expected failures."""
import logging
import sys

from src.errors import PipelineError


def run_stage(main, *args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        main(*args)
    except (PipelineError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
