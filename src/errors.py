class PipelineError(Exception):
    """An expected failure (bad params, bad data, missing input): reported as one line, no traceback."""


def first_line(error: Exception) -> str:
    """An exception's message cut to its first line (its type where it has none), for a one-line error."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
