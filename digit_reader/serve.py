"""Run the app with uvicorn: `python -m digit_reader.serve` (what `make serve` runs).

    python -m digit_reader.serve [--host 127.0.0.1] [--port 8000] [--model reader] [--runtime torch|onnx] [--root .] [--workers 1]

With `--runtime onnx` the server runs models/<model>.onnx with onnxruntime and never imports torch.
"""
import argparse
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys

import uvicorn

from digit_reader.api import server_app
from digit_reader.reader import DEFAULT_MODEL, DEFAULT_RUNTIME, MODELS, RUNTIMES

BACKLOG = 2048  # uvicorn's default: connections the kernel queues before the server accepts them
# After SIGTERM, the seconds a connection still busy may keep the server up; then it is cut and the
# server exits. Unbounded (uvicorn's default), a stalled upload, or a keep-alive connection accepted
# just as the signal came, kept a stopping server up for as long as its client liked
# (benchmarks/notes/serving.md#2026-12-04-a-server-that-did-not-stop). A reading takes milliseconds.
GRACEFUL_SHUTDOWN_S = 5
# No access log: a line per request would cost more than reading the digit.
UVICORN_OPTIONS = dict(access_log=False, log_level="info", backlog=BACKLOG, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m digit_reader.serve", description="Serve the digit reader over HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=8000)
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=MODELS)
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=RUNTIMES,
                        help=f"torch (models/<model>.pth) or onnx (models/<model>.onnx, no torch) (default: {DEFAULT_RUNTIME})")
    parser.add_argument("--root", default=".", help="the project directory (models/, data/processed/, params.yaml)")
    parser.add_argument("--workers", type=positive_int, default=1, help="server processes (each loads the model)")
    args = parser.parse_args(argv)
    if args.workers == 1:
        app = server_app(args.root, args.model, args.runtime)  # fails fast, with one line, before uvicorn starts
        port_free_or_exit(args.host, args.port)
        # After its graceful stop uvicorn raises SIGTERM again, for the handler it had replaced
        signal.signal(signal.SIGTERM, stop_cleanly)
        uvicorn.run(app, host=args.host, port=args.port, **UVICORN_OPTIONS)
        return
    context = multiprocessing.get_context("spawn")
    # The parent only watches the workers: a model loaded here would be held for nothing while the
    # server runs. A process that loads it once, before any worker starts, fails fast, in one line.
    check = context.Process(target=server_app, args=(args.root, args.model, args.runtime))
    check.start()
    check.join()
    if check.exitcode:
        sys.exit(check.exitcode)
    port_free_or_exit(args.host, args.port)
    workers = [context.Process(target=serve_worker, args=(args.host, args.port, args.root, args.model, args.runtime))
               for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    signal.signal(signal.SIGTERM, stop_cleanly)
    failed = None
    try:
        # The server is all its workers: when one ends (it could not listen, or crashed), stop the rest.
        ended = multiprocessing.connection.wait([worker.sentinel for worker in workers])
        failed = next((w for w in workers if w.sentinel in ended and w.exitcode), None)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()
    if failed is not None:
        print(f"error: server worker {failed.pid} exited with status {failed.exitcode}: the others are stopped",
              file=sys.stderr)
        sys.exit(1)


def port_free_or_exit(host: str, port: int) -> None:
    """Exit with one line unless `port` is free. The workers' sockets share their port
    (SO_REUSEPORT), and so would share it with another server's workers, each side answering
    some of the other's requests; a socket without SO_REUSEPORT binds only a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.create_server((host, port), family=family).close()
    except OSError as error:
        cannot_listen(host, port, error)


def cannot_listen(host: str, port: int, error: OSError) -> None:
    # the errno's words alone: create_server's message repeats the address
    print(f"error: cannot listen on {host}:{port}: {os.strerror(error.errno) if error.errno else error}", file=sys.stderr)
    sys.exit(1)


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 0-65535, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def stop_cleanly(*_) -> None:
    """SIGTERM's handler: a stop is a clean exit, 0, whether one server or the parent of several
    workers got it, not a death by the signal."""
    sys.exit(0)


def serve_worker(host: str, port: int, root: str, model: str, runtime: str) -> None:
    """One of several server processes. Each listens on its own socket bound to the same port
    (SO_REUSEPORT), and the kernel spreads new connections evenly over them. uvicorn's own
    --workers share one socket, where one process accepted all 16 keep-alive connections of the
    benchmark while the other idled, and (uvicorn 0.54) leave Nagle's algorithm on: 2 workers
    served no more than 1 (the measurements:
    benchmarks/notes/serving.md#2026-11-25-make-bench-serve-issue-9-on-the-xeon-with-amx)."""
    app = server_app(root, model, runtime)
    try:
        sock = listening_socket(host, port)
    except OSError as error:
        cannot_listen(host, port, error)
    uvicorn.Server(uvicorn.Config(app, **UVICORN_OPTIONS)).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port that other processes may bind too (SO_REUSEPORT).
    Listening at once, not when uvicorn starts: Linux lets any socket with SO_REUSEADDR bind a
    port whose sockets are bound but not listening, so only a listening socket holds the port
    against processes that do not share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on sockets that say they are TCP. Without it each response waited for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


if __name__ == "__main__":
    main()
