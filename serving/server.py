"""Run the app with uvicorn: `python -m serving` (what `make serve` runs).

    python -m serving [--host 127.0.0.1] [--port 8000] [--model cnn] [--root .] [--workers 1]
"""
import argparse
import os
import sys

import torch
import uvicorn

from src.reader import ModelError

TORCH_THREADS = 1  # one image is a few small convolutions: threads cost more than they save


def server_app(root: str = ".", model: str = "cnn"):
    """The app for a server process; a missing or mismatched model is one line and exit 2."""
    from serving.app import create_app

    torch.set_num_threads(TORCH_THREADS)
    try:
        return create_app(root, model)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m serving", description="Serve the digit reader over HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="cnn", choices=["cnn", "mlp"])
    parser.add_argument("--root", default=".", help="the project directory (models/, data/processed/, params.yaml)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (each loads the model)")
    args = parser.parse_args(argv)
    os.environ["DIGITS_ROOT"], os.environ["DIGITS_MODEL"] = args.root, args.model
    app = server_app(args.root, args.model)  # fails fast, with one line, before uvicorn starts
    # no access log: a line per request would cost more than reading the digit
    options = dict(host=args.host, port=args.port, access_log=False, log_level="info")
    if args.workers == 1:
        uvicorn.run(app, **options)
    else:  # each worker process imports serving.app:app, which reads DIGITS_ROOT and DIGITS_MODEL
        uvicorn.run("serving.app:app", workers=args.workers, **options)
