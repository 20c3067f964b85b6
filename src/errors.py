class PipelineError(Exception):
    """An expected failure (bad params, bad data, missing input): reported as one line, no traceback."""
