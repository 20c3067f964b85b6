"""Serving benchmark: N concurrent clients on loopback, for a fixed time, posting a drawn digit.

    python -m benchmarks.serve_load [--runtime torch,onnx] [--clients 16] [--seconds 10] [--workers 1] [--url URL]
                                    [--image digit|number] [--mnist DIR] [--attack N] [--batch N]

Without --url it starts `python -m digit_reader.serve` on a free port of 127.0.0.1 with the project's
trained model (models/reader.pth or models/reader.onnx: run `make repro` first), once per runtime, one
after the other under the same load, and stops it afterwards. Each client is a keep-alive HTTP/1.1
connection that posts the PNG a user drawing a 7 on the page would send (its canvas, scaled to
400 x 200), waits for the answer, and posts again; with `--image number`, a 4-digit number whose
digits touch instead (MNIST test digits written on paper, as benchmarks/reader_accuracy.py does:
the reader runs its line model too). Per runtime it reports requests/s, latency
percentiles, the server's resident memory after the load (RSS and PSS, summed over its processes:
with several workers, the parent and every worker), and the time from starting the server to its
first answer to /predict. With `--attack N`, a second run on the same server adds N clients
posting a hostile PNG (`hostile_page`: 40 megapixels of ink dots in about 61 KB) beside the
honest ones, and the results say what the honest clients kept. With `--batch N`, each request
posts N drawn digits to /predict/batch instead. Results go to benchmarks/results/serve-<cpu kind>-
<model>-<runtime>-<workers>w-<clients>c[-number][-batchN][-attackN].json (with --url: url-<runtime>
for the first three): one file per configuration, so runs of different ones never overwrite each other.

The client is asyncio on raw sockets (no HTTP library): on a 2-core machine it shares the CPU
with the server, so it must be cheap; its own CPU time is reported beside the results.
"""
import argparse
import asyncio
import datetime
import io
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from PIL import Image, ImageDraw

from benchmarks.hardware import RESULTS_DIR, cpu_kind, cpu_name, git_commit
from digit_reader.runtimes import DEFAULT_MODEL, DEFAULT_RUNTIME, MODELS, RUNTIMES
from src.errors import PipelineError
from src.fileio import write_json



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


def hostile_page(seed: int = 0) -> bytes:
    """An attacker's PNG: a white page of 8000 x 4900 pixels (under the reader's 40-megapixel
    limit) with 2,000 seeded ink dots, about 61 KB: each request costs the server a decode of
    39 MB unless it is refused from its header."""
    import numpy as np

    page = np.full((4900, 8000), 255, np.uint8)
    dots = np.random.default_rng(seed).integers(0, page.size, 2000)
    page.flat[dots] = 0
    buffer = io.BytesIO()
    Image.fromarray(page).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def touching_number(mnist: Path) -> bytes:
    """A 4-digit number of MNIST test digits (raw files in `mnist`) that touch (0-4 px), dark on
    white paper, 3x enlarged."""
    from src.number_images import fixed_numbers
    from src.preprocess import read_raw
    from tools.user_images import composed_on_paper

    images, labels = read_raw("t10k", mnist)
    numbers = fixed_numbers(images, labels, [4], ["touching"], seed=0)
    buffer = io.BytesIO()
    composed_on_paper(numbers)[0].save(buffer, "PNG")
    return buffer.getvalue()


async def client(host, port, request: bytes, stop_at: float, latencies: list, statuses: dict, ends: list):
    """Posts `request` until `stop_at`; each answer's latency and status, and when its last answer came (`ends`)."""
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
        ends.append(time.perf_counter())
        writer.close()


def post(host: str, path: str, body: bytes, content_type: str = "image/png") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def batch_upload(host: str, body: bytes, count: int) -> bytes:
    """One /predict/batch request of `count` copies of `body` as a multipart upload."""
    boundary = "digits-benchmark-boundary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + body + b"\r\n"
    return post(host, "/predict/batch", part * count + f"--{boundary}--\r\n".encode(),
                f"multipart/form-data; boundary={boundary}")


async def load(url: str, groups: dict[str, tuple[bytes, int]], seconds: float):
    """Each group's clients (name: (request, clients)) at once, for `seconds` after a second of
    warm-up: per group its latencies, statuses and seconds (to its own last answer: a slow group
    does not stretch another's); the time taken by all, the client's CPU time and the requests of
    the warm-up."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    warm = []
    await asyncio.gather(*(client(host, port, request, time.perf_counter() + 1.0, warm, {}, [])
                           for request, clients in groups.values() for _ in range(clients)))
    answers = {name: ([], {}, []) for name in groups}
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(host, port, request, started + seconds, *answers[name])
                           for name, (request, clients) in groups.items() for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    seen = {name: (latencies, statuses, max(ends) - started) for name, (latencies, statuses, ends) in answers.items()}
    return seen, elapsed, cpu, len(warm)


def described(latencies: list[float], statuses: dict, elapsed: float) -> dict:
    ms = [1000 * v for v in latencies]
    return {"requests": len(ms), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "requests_per_s": round(len(ms) / elapsed, 1),
            "latency_ms": {"p50": round(percentile(ms, 50), 2), "p90": round(percentile(ms, 90), 2),
                           "p99": round(percentile(ms, 99), 2), "max": round(max(ms), 2),
                           "mean": round(statistics.mean(ms), 2)}}


def server_processes(pid: int) -> list[psutil.Process]:
    """The server and, with several workers, its worker processes."""
    server = psutil.Process(pid)
    return [server, *server.children(recursive=True)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server's processes and their threads."""
    return sum(sum(p.cpu_times()[:2]) for p in server_processes(pid))


def memory_mb(pid: int) -> dict:
    """Resident memory of the server's processes, summed: RSS counts the pages they share (the
    libraries' code) once per process; PSS splits those between the processes, so its sum is
    what the server costs the machine."""
    infos = [p.memory_full_info() for p in server_processes(pid)]
    return {"processes": len(infos), "rss": round(sum(i.rss for i in infos) / 2**20, 1),
            "pss": round(sum(i.pss for i in infos) / 2**20, 1)}


def percentile(values, q):
    """The nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_answer(url: str, body: bytes) -> bool:
    request = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def start_server(root: Path, workers: int, model: str, runtime: str, body: bytes):
    """The server on a free port, and the seconds from starting its process to its first answer
    to a digit (imports, loading the model, and the first inference, which sets up kernels)."""
    port = free_port()
    started = time.perf_counter()
    # its stderr to a file, not a pipe: a pipe nobody reads during the load would fill and stop the server
    log = tempfile.TemporaryFile("w+")
    server = subprocess.Popen([sys.executable, "-m", "digit_reader.serve", "--root", str(root), "--port", str(port),
                               "--workers", str(workers), "--model", model, "--runtime", runtime], stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not first_answer(url, body):
        if server.poll() is not None:
            log.seek(0)
            sys.exit(f"the {runtime} server did not start: {log.read().strip()}")
        if time.monotonic() > deadline:
            stopped_or_killed(server, 0)   # its workers too
            sys.exit(f"the {runtime} server did not answer within 60 s")
        time.sleep(0.02)
    return server, url, time.perf_counter() - started


STOP_S = 10  # the server bounds its own stop at 5 s (digit_reader.serve.GRACEFUL_SHUTDOWN_S)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM, as a user stops it; a server still running STOP_S later is killed with its workers,
    so that a benchmark never leaves one behind, and says so (its numbers stand: they were taken)."""
    if not stopped_or_killed(server, STOP_S):
        print(f"warning: the server did not stop within {STOP_S} s of SIGTERM; killed with its workers", file=sys.stderr)


def stopped_or_killed(server: subprocess.Popen, seconds: float) -> bool:
    """SIGTERM to `server`; whether it exited within `seconds`. If not, it is killed with every
    process it started, so that nothing of it is left running either way."""
    server.terminate()
    try:
        server.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        for process in [*psutil.Process(server.pid).children(recursive=True), psutil.Process(server.pid)]:
            process.kill()
        server.wait()
        return False


def measure(args, runtime: str | None, body: bytes) -> dict:
    """One run: start a server in `runtime` (or use --url), load it, and describe the result;
    with --attack, load it again with the hostile clients beside the honest ones."""
    server, url, start_s = (None, args.url, None) if args.url else start_server(args.root, args.workers, args.model, runtime, body)
    if not server:  # a server started elsewhere says which runtime it runs
        with urllib.request.urlopen(url + "/health", timeout=5) as health:
            runtime = json.load(health).get("runtime")
    host = re.match(r"http://([^:/]+)", url).group(1)
    honest = batch_upload(host, body, args.batch) if args.batch else post(host, "/predict", body)
    try:
        server_cpu = cpu_seconds(server.pid) if server else float("nan")
        seen, elapsed, client_cpu, warmed = asyncio.run(load(url, {"honest": (honest, args.clients)}, args.seconds))
        if server:
            server_cpu, memory = cpu_seconds(server.pid) - server_cpu, memory_mb(server.pid)
        if args.attack:
            hostile = hostile_page()
            attacked, attack_elapsed, _, _ = asyncio.run(load(
                url, {"honest": (honest, args.clients), "hostile": (post(host, "/predict", hostile), args.attack)}, args.seconds))
    finally:
        if server:
            stop(server)
    clean = described(*seen["honest"])
    under_attack = described(*attacked["honest"]) if args.attack else None
    for when, honest_answers in (("alone", clean), ("under attack", under_attack)):
        failed = {status: n for status, n in (honest_answers or {}).get("statuses", {}).items() if status != "200"}
        if failed:
            raise PipelineError(f"the honest clients got answers other than 200 {when} ({failed}): "
                                "what they measured is not a throughput of readings")
    result = {
        "cpu": cpu_name(), "cpu_kind": cpu_kind(), "cpu_cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
        "commit": git_commit() if server else None,  # a server at --url runs code this client cannot see
        "python": sys.version.split()[0], "url": url, "runtime": runtime, "server_workers": args.workers if server else None,
        "model": args.model if server else None, "image": args.image, "batch": args.batch or None, "clients": args.clients,
        "seconds": round(elapsed, 2), "body_bytes": len(body), **clean,
        "client_cpu_percent_of_one_core": round(100 * client_cpu / elapsed, 1),
    }
    if args.batch:
        result["images_per_s"] = round(clean["requests_per_s"] * args.batch, 1)
    if server:
        result.update({"start_to_first_answer_s": round(start_s, 2), "server_memory_mb_after_load": memory,
                       "server_cpu_ms_per_request": round(1000 * server_cpu / (clean["requests"] + warmed), 2)})
    if args.attack:
        result["attack"] = {
            "clients": args.attack, "body_bytes": len(hostile), "pixels": "{}x{}".format(*Image.open(io.BytesIO(hostile)).size),
            "seconds": round(attack_elapsed, 2),
            "hostile": {k: v for k, v in described(*attacked["hostile"]).items() if k != "latency_ms"},
            "honest": under_attack,
            "honest_throughput_kept": round(under_attack["requests_per_s"] / clean["requests_per_s"], 3)}
    return result


def summary(result: dict) -> str:
    line = (f"{result['runtime'] or result['url']}: {result['requests']} requests in {result['seconds']:.1f} s from "
            f"{result['clients']} clients: {result['requests_per_s']} requests/s; latency p50 {result['latency_ms']['p50']} ms, "
            f"p99 {result['latency_ms']['p99']} ms; statuses {result['statuses']}; "
            f"the client used {result['client_cpu_percent_of_one_core']}% of a core")
    if "images_per_s" in result:
        line += f"; {result['batch']} images per request: {result['images_per_s']} images/s"
    if "attack" in result:
        attack, honest = result["attack"], result["attack"]["honest"]
        line += (f"; beside {attack['clients']} hostile clients ({attack['hostile']['requests']} requests, statuses "
                 f"{attack['hostile']['statuses']}): {honest['requests_per_s']} requests/s "
                 f"({100 * attack['honest_throughput_kept']:.0f}% kept), p50 {honest['latency_ms']['p50']} ms, "
                 f"p99 {honest['latency_ms']['p99']} ms")
    if "server_memory_mb_after_load" in result:
        memory = result["server_memory_mb_after_load"]
        line += (f"; the server: {result['server_cpu_ms_per_request']} ms of CPU per request, {memory['rss']} MB RSS "
                 f"({memory['pss']} MB PSS) over {memory['processes']} process(es), first answer "
                 f"{result['start_to_first_answer_s']} s after its start")
    return line + f" ({result['cpu']}, {result['cpu_kind']}, {result['cpu_cores']} cores)"


def results_path(result: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """Named by what ran, so that each configuration has its own file: a later run of the same one replaces it."""
    ran = (f"{result['model']}-{result['runtime']}-{result['server_workers']}w" if result["server_workers"]
           else f"url-{result['runtime']}")
    image = "-number" if result.get("image") == "number" else ""
    batch = f"-batch{result['batch']}" if result.get("batch") else ""
    attack = f"-attack{result['attack']['clients']}" if result.get("attack") else ""
    return results_dir / f"serve-{result['cpu_kind']}-{ran}-{result['clients']}c{image}{batch}{attack}.json"


def runtimes(value: str) -> list[str]:
    names = value.split(",")
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown runtime(s) {', '.join(unknown)} (known: {', '.join(RUNTIMES)})")
    return names


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one per runtime)")
    parser.add_argument("--runtime", type=runtimes, default=[DEFAULT_RUNTIME, *(r for r in RUNTIMES if r != DEFAULT_RUNTIME)],
                        help="comma-separated runtimes to measure, one after the other (default: all, the default first)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="server processes, when this starts the server")
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=MODELS)
    parser.add_argument("--root", type=Path, default=Path("."), help="the project directory the server reads (default: current)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help=f"where to write the results (default {RESULTS_DIR})")
    parser.add_argument("--image", default="digit", choices=["digit", "number"],
                        help="what the clients post: a drawn 7, or a 4-digit number whose digits touch")
    parser.add_argument("--attack", type=int, default=0, metavar="N",
                        help="then load again with N more clients posting a hostile PNG (40 megapixels of dots in ~61 KB)")
    parser.add_argument("--batch", type=int, default=0, metavar="N",
                        help="post N images per request to /predict/batch instead of one to /predict")
    parser.add_argument("--mnist", type=Path, help="MNIST's raw files, for --image number (default: ROOT/data/raw/MNIST/raw)")
    args = parser.parse_args(argv)
    mnist = args.mnist or args.root / "data" / "raw" / "MNIST" / "raw"
    body, results = (drawn_digit() if args.image == "digit" else touching_number(mnist)), []
    for runtime in ([None] if args.url else args.runtime):
        result = measure(args, runtime, body)
        print(summary(result), flush=True)
        path = results_path(result, args.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, result)
        print(f"written to {path}", flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    from src.cli import run_stage

    run_stage(main)
