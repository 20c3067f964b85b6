"""Serving benchmark: N concurrent clients on loopback, for a fixed time, posting a drawn digit.

    python -m benchmarks.serve_load [--url URL] [--clients 16] [--seconds 10] [--workers 1]

Without --url it starts `python -m digit_reader.serve` on a free port of 127.0.0.1 with the project's
trained model (models/cnn.pth: run `make repro` first) and stops it afterwards. Each client is a
keep-alive HTTP/1.1 connection that posts the PNG a user drawing a 7 on the page would send
(its canvas, scaled to 400 x 200), waits for the answer, and posts again. Prints requests/s and latency
percentiles; writes them, with the CPU model, to benchmarks/results/serve-<cpu>-<date>.json.

The client is asyncio on raw sockets (no HTTP library): on a 2-core machine it shares the CPU
with the server, so it must be cheap; its own CPU time is reported beside the results.
"""
import argparse
import asyncio
import datetime
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.time_to_accuracy import cpu_name

RESULTS_DIR = Path("benchmarks/results")


def drawn_digit() -> bytes:
    """What the page sends for a drawn 7: its canvas scaled to 400 x 200 (digit_reader/static/app.js),
    white with a black stroke 8% of its height."""
    k = 4  # drawn 4x larger, then reduced: anti-aliased edges, as a browser's canvas has
    image = Image.new("RGB", (400 * k, 200 * k), "white")
    stroke = [(160 * k, 44 * k), (236 * k, 44 * k), (182 * k, 160 * k)]
    ImageDraw.Draw(image).line(stroke, fill="black", width=round(0.08 * 200 * k), joint="curve")
    buffer = io.BytesIO()
    image.resize((400, 200), Image.Resampling.LANCZOS).convert("RGBA").save(buffer, "PNG")  # canvas.toBlob: RGBA
    return buffer.getvalue()


async def client(host, port, request: bytes, stop_at: float, latencies: list, statuses: dict):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(url: str, body: bytes, clients: int, seconds: float):
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    request = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    warm, latencies, statuses = [], [], {}
    await asyncio.gather(*(client(host, port, request, time.perf_counter() + 1.0, warm, {}) for _ in range(clients)))
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(host, port, request, started + seconds, latencies, statuses) for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return latencies, statuses, elapsed, cpu, len(warm)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc), or nan elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def start_server(workers: int, model: str):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "digit_reader.serve", "--port", str(port), "--workers", str(workers),
                               "--model", model], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return server, url
        except OSError:
            if server.poll() is not None:
                sys.exit(f"the server did not start: {server.stderr.read().strip()}")
            if time.monotonic() > deadline:
                server.kill()
                sys.exit("the server did not answer /health within 60 s")
            time.sleep(0.2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="server processes, when this starts the server")
    parser.add_argument("--model", default="cnn", choices=["cnn", "mlp"])
    args = parser.parse_args(argv)
    server, url = (None, args.url) if args.url else start_server(args.workers, args.model)
    try:
        body = drawn_digit()
        server_cpu = cpu_seconds(server.pid) if server else float("nan")
        latencies, statuses, elapsed, client_cpu, warmed = asyncio.run(load(url, body, args.clients, args.seconds))
        server_cpu = cpu_seconds(server.pid) - server_cpu if server else float("nan")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
    ms = [1000 * v for v in latencies]
    result = {
        "cpu": cpu_name(), "cpu_cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
        "python": sys.version.split()[0], "url": url, "server_workers": args.workers if server else None,
        "model": args.model if server else None, "clients": args.clients, "seconds": round(elapsed, 2),
        "body_bytes": len(body), "requests": len(ms), "statuses": {str(k): v for k, v in statuses.items()},
        "requests_per_s": round(len(ms) / elapsed, 1),
        "latency_ms": {"p50": round(percentile(ms, 50), 2), "p90": round(percentile(ms, 90), 2),
                       "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2),
                       "mean": round(statistics.mean(ms), 2)},
        "client_cpu_percent_of_one_core": round(100 * client_cpu / elapsed, 1),
    }
    if server and args.workers == 1:  # with several workers the CPU is spread over child processes
        result["server_cpu_ms_per_request"] = round(1000 * server_cpu / (len(ms) + warmed), 2)
    print(f"{result['requests']} requests in {elapsed:.1f} s from {args.clients} clients: "
          f"{result['requests_per_s']} requests/s; latency p50 {result['latency_ms']['p50']} ms, "
          f"p99 {result['latency_ms']['p99']} ms; statuses {result['statuses']}; "
          f"the client used {result['client_cpu_percent_of_one_core']}% of a core"
          + (f", the server {result['server_cpu_ms_per_request']} ms of CPU per request" if "server_cpu_ms_per_request" in result else "")
          + f" ({result['cpu']}, {os.cpu_count()} cores)")
    slug = re.sub(r"[^a-z0-9]+", "-", result["cpu"].lower()).strip("-")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"serve-{slug}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
