"""Read the digits in image files with a trained model.

    python -m digit_reader.predict [--model reader|cnn|mlp] [--runtime torch|onnx] [--json] [--top K] IMAGE...

PNG, JPEG, BMP, GIF, WebP (anything Pillow reads). An image may hold one digit or a whole
number; it is read left to right. Plain output: one line per file, the number read and its
confidence (the lowest of its digits' top probabilities), `?` after an uncertain digit.
`--json`: one JSON object per line per file (the same as the HTTP API's, plus `file`).
A file that cannot be read gets a one-line error (stderr, or an `error` field with --json) and
the others are still read; the exit status is 1 if any file failed, 2 if the model is missing.
`--runtime onnx` runs models/<model>.onnx with onnxruntime, without importing torch.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from digit_reader.image import ImageError
from digit_reader.reader import DEFAULT_MODEL, DEFAULT_RUNTIME, MODELS, RUNTIMES, ModelError, Reader


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m digit_reader.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, BMP, GIF, WebP)")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=MODELS,
                        help=f"which trained classifier (default: {DEFAULT_MODEL}, the reader's own)")
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=RUNTIMES,
                        help=f"torch (models/<model>.pth) or onnx (models/<model>.onnx, no torch) (default: {DEFAULT_RUNTIME})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line per file")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="classes listed per digit with --json (1-10, default 3)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project directory (default: current)")
    args = parser.parse_args(argv)
    if not 1 <= args.top <= 10:
        parser.error(f"--top must be between 1 and 10, got {args.top}")
    return args


def plain(file: str, result: dict) -> str:
    if not result["digits"]:
        return f"{file}: no digit found"
    number = "".join(p["digit"] + ("?" if p["uncertain"] else "") for p in result["predictions"])
    note = " (uncertain)" if result["uncertain"] else ""
    return f"{file}: {number}  confidence {100 * result['confidence']:.1f}%{note}"


MAX_FILE_BYTES = 256 * 1024 * 1024   # far above any image the reader accepts (40 megapixels), far below a machine's memory


def read_file(file: str) -> bytes:
    """The file's bytes; a one-line ImageError if it is empty or too large to be an image (a
    device such as /dev/zero would otherwise be read until memory runs out)."""
    with open(file, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if not data:
        raise ImageError("empty file: no image data")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"over the limit of {MAX_FILE_BYTES} bytes: too large for an image")
    return data


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        reader = Reader(args.model, args.root, args.runtime)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = False
    for file in args.images:
        try:
            result = reader.read(read_file(file), args.top)
        except (OSError, ImageError) as error:
            failed = True
            message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            if args.json:
                print(json.dumps({"file": file, "error": message}), flush=True)
            else:
                print(f"error: {file}: {message}", file=sys.stderr, flush=True)
            continue
        print(json.dumps({"file": file, **result}) if args.json else plain(file, result), flush=True)
    return 1 if failed else 0


def exit_code_of_main() -> int:
    """main's exit status; output that cannot be written (a closed pipe, `| head -1`; a full disk)
    ends the command quietly or with one line, not a traceback."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except OSError as error:
        if error.filename is not None:   # a file's error is handled in main: this one is not the output's
            raise
        # no more output: Python's own flush at exit would fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if not isinstance(error, BrokenPipeError):   # a closed pipe: its reader has gone, and wants nothing more
            print(f"error: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(exit_code_of_main())
