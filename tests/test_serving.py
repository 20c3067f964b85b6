"""The HTTP API (digit_reader/api.py): FastAPI's test client, a real uvicorn process on 127.0.0.1,
and a fuzz test. Bad input must get a 4xx with a JSON message, never a 5xx, and never stop the
next request from being served."""
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageDraw

from digit_reader.api import (LIMITS, MAX_BATCH_BODY, MAX_BATCH_FILES, MAX_BODY, READS_AT_ONCE, SERVER_THREADS,
                              create_app)
from digit_reader.serve import GRACEFUL_SHUTDOWN_S, listening_socket
from digit_reader.reader import Reader
from digit_reader.runtimes import DEFAULT_RUNTIME
from src.fileio import md5_of
from tests.conftest import ROOT, encode, png_header_only, serving_process


@pytest.fixture(scope="module")
def client(reader_project):
    with TestClient(create_app(reader_project)) as client:
        yield client


@pytest.fixture(scope="module")
def seven(mnist_test_digits, paper) -> bytes:
    return encode(paper(mnist_test_digits[0][:1]))  # MNIST's first test digit, a 7


@pytest.fixture(scope="module")
def number(mnist_test_digits, paper) -> bytes:
    return encode(paper(mnist_test_digits[0][[1, 3, 1, 2]], gaps=[9, 5, 12]).convert("RGB"), "JPEG", quality=90)


def test_raw_body_and_multipart_upload_give_the_clis_json(client, seven, number, reader_project):
    expected = Reader(root=reader_project).read(seven, top=3)
    raw = client.post("/predict", content=seven, headers={"content-type": "image/png"})
    upload = client.post("/predict", files={"file": ("seven.png", seven, "image/png")})
    assert raw.status_code == upload.status_code == 200
    assert raw.json() == upload.json() == expected
    assert expected["digits"] == "7"
    read = client.post("/predict?top=10", files={"photo": ("n.jpg", number, "image/jpeg")}).json()
    assert read["digits"] == "2021" and all(len(p["top"]) == 10 for p in read["predictions"])


def test_health_docs_and_page(client, reader_project):
    models = reader_project / "models"
    assert client.get("/health").json() == {"status": "ok", "model": "reader", "arch": "FastCNN", "runtime": DEFAULT_RUNTIME,
                                            "md5": md5_of(models / f"reader.{DEFAULT_RUNTIME}"),
                                            "threads": SERVER_THREADS,
                                            "line_model": {"md5": md5_of(models / f"numbers.{DEFAULT_RUNTIME}")},
                                            "limits": LIMITS, "pid": os.getpid()}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"multipart/form-data", "image/*"} <= set(paths["/predict"]["post"]["requestBody"]["content"])
    batch = paths["/predict/batch"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert batch["properties"]["files"]["maxItems"] == MAX_BATCH_FILES
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200


def test_the_page_loads_nothing_from_elsewhere(client):
    for path in ("/", "/static/app.js", "/static/app.css"):
        text = client.get(path).text
        assert "://" not in text.replace('"http://www.w3.org', ""), path


def specks(width: int = 100, height: int = 100) -> Image.Image:
    """White paper with two dark specks of two pixels each: dust, no digit."""
    image = Image.new("L", (width, height), 255)
    for x, y in ((50, 50), (51, 50), (20, 70), (20, 71)):
        image.putpixel((x, y), 0)
    return image


@pytest.mark.parametrize("image", [Image.new("RGB", (300, 150), "white"), specks()], ids=["blank", "specks only"])
def test_a_blank_image_says_no_digit_was_found(client, image):
    answer = client.post("/predict", content=encode(image))
    assert answer.status_code == 200
    assert answer.json()["digits"] == "" and answer.json()["message"] == "no digit found"


def dotted(side: int = 30) -> bytes:
    """A PNG of a few hundred bytes: a grid of side x side dots, each of 2 x 2 pixels (a dotted
    notebook page, or a hostile upload: grouping so many marks once took minutes)."""
    page = np.full((5 * side + 10, 5 * side + 10), 255, np.uint8)
    for i in range(side):
        for j in range(side):
            page[5 + 5 * i:7 + 5 * i, 5 + 5 * j:7 + 5 * j] = 0
    return encode(Image.fromarray(page))


def truncated(seven: bytes) -> bytes:
    return seven[: len(seven) // 2]


BAD = [  # (what, body or a function of the good PNG, extra request options, status, words of the message)
    ("not an image", b"<html>hello</html>", {}, 422, "not a readable image"),
    ("truncated", truncated, {}, 422, "corrupt or truncated"),
    ("empty body", b"", {}, 400, "empty body"),
    ("0 pixels", png_header_only(0, 28), {}, 422, "size of 0 pixels"),
    ("100,000 px wide", png_header_only(100_000, 1), {}, 422, "100000x1 pixels: too large"),
    ("decompression bomb", png_header_only(20_000, 20_000), {}, 422, "decompression bomb"),
    ("empty upload", None, {"files": {"file": ("x.png", b"", "image/png")}}, 400, "is empty"),
    ("form without a file", None, {"files": {"name": (None, b"x")}}, 400, "without a file"),
    ("broken multipart", b"--xyz\r\nnonsense", {"headers": {"content-type": "multipart/form-data; boundary=xyz"}},
     400, "multipart"),
    ("multipart without boundary", b"x", {"headers": {"content-type": "multipart/form-data"}}, 400, "malformed multipart"),
    ("two files", None, {"files": [("file", ("a.png", b"x", "image/png"))] * 2}, 400,
     "2 files in one upload: /predict reads one image; send several to /predict/batch"),
    ("a hundred files", None, {"files": [("file", ("a.png", b"x", "image/png"))] * 100}, 400,
     f"more than {MAX_BATCH_FILES} files in one upload: /predict reads one image"),
    ("over the size limit", b"\0" * (MAX_BODY + 1), {}, 413, "over the limit"),
    # Pillow opens a CIELab TIFF but cannot convert it to grey
    ("CIELab colours", encode(Image.new("LAB", (60, 60), (50, 0, 0)), "TIFF"), {}, 422, "unsupported colour mode LAB"),
    ("900 dots", dotted(), {}, 422, "too many separate marks in the image (900; a number has at most 250): crop it"),
]


@pytest.mark.parametrize("what, body, options, status, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_4xx_naming_the_problem_and_the_next_request_is_served(
        client, seven, what, body, options, status, words):
    if callable(body):
        body = body(seven)
    answer = client.post("/predict", content=body, **options) if body is not None else client.post("/predict", **options)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert client.post("/predict", content=seven).json()["digits"] == "7"


def test_pillows_own_bomb_limit_is_a_4xx(client, seven, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    answer = client.post("/predict", content=seven)
    assert answer.status_code == 422 and "decompression bomb" in answer.json()["detail"]
    assert answer.json()["detail"].endswith("(the reader takes at most 10000 pixels on a side and 40 megapixels)")


@pytest.fixture(scope="module")
def hostile() -> bytes:
    from benchmarks.serve_load import hostile_page

    return hostile_page()


def test_a_hostile_page_of_dots_gets_a_422_naming_its_pixels_per_byte(client, hostile, seven):
    answer = client.post("/predict", content=hostile)
    assert answer.status_code == 422
    assert f"8000x4900 pixels in {len(hostile)} bytes, {39_200_000 / len(hostile):.0f} pixels per byte" in answer.json()["detail"]
    assert client.post("/predict", content=seven).json()["digits"] == "7"


def test_a_batch_reads_each_image_in_order_and_gives_a_bad_one_its_own_error(client, seven, number, hostile):
    files = [("files", ("seven.png", seven, "image/png")), ("files", ("notes.txt", b"hello", "text/plain")),
             ("files", ("number.jpg", number, "image/jpeg")), ("files", ("empty.png", b"", "image/png")),
             ("files", ("dots.png", hostile, "image/png"))]
    answer = client.post("/predict/batch?top=2", files=files)
    assert answer.status_code == 200 and answer.json()["count"] == 5
    seven_read, text, number_read, empty, dots = answer.json()["results"]
    assert [r["index"] for r in answer.json()["results"]] == [0, 1, 2, 3, 4]
    assert seven_read == {"index": 0, "file": "seven.png", **client.post("/predict?top=2", content=seven).json()}
    assert number_read["file"] == "number.jpg" and number_read["digits"] == "2021"
    assert text["status"] == 422 and "not a readable image" in text["error"] and "digits" not in text
    assert empty["status"] == 400 and "'empty.png' is empty" in empty["error"]
    assert dots["status"] == 422 and "pixels per byte" in dots["error"]
    assert answer.headers["x-model-md5"] == client.get("/health").json()["md5"]


@pytest.mark.parametrize("what, request_options, status, words", [
    ("raw body", {"content": b"png"}, 415, "multipart/form-data"),
    ("no file", {"files": {"name": (None, b"x")}}, 400, "part 1 of the upload (field 'name') is not a file"),
    ("an image pasted as text between two files",   # curl -F files=@a.png -F 'files=<b.png' -F files=@c.png
     {"files": [("files", ("a.png", b"x", "image/png")), ("files", (None, b"x")), ("files", ("c.png", b"x", "image/png"))]},
     400, "part 2 of the upload (field 'files') is not a file: send each image as a file, with a file name"),
    ("too many files", {"files": [("files", ("d.png", b"x", "image/png"))] * (MAX_BATCH_FILES + 1)}, 400,
     f"too many files in one upload: at most {MAX_BATCH_FILES}"),
])
def test_a_bad_batch_gets_a_4xx_naming_the_problem(client, what, request_options, status, words):
    answer = client.post("/predict/batch", **request_options)
    assert answer.status_code == status and words in answer.json()["detail"], answer.text


@pytest.mark.parametrize("top", ["0", "11", "abc"])
def test_a_bad_query_gets_a_422_of_one_line_naming_it(client, seven, top):
    answer = client.post(f"/predict?top={top}", content=seven)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("query top: ") and "\n" not in detail


def test_large_images_are_read_at_most_reads_at_once_at_a_time(client, monkeypatch):
    """Concurrent uploads of large images are decoded and read READS_AT_ONCE at a time (each takes
    hundreds of MB), in threads, the rest waiting: both endpoints."""
    import asyncio

    reading, most = [0], [0]
    lock = threading.Lock()

    def slow_read(image, top=3):
        with lock:
            reading[0] += 1
            most[0] = max(most[0], reading[0])
        time.sleep(0.2)
        with lock:
            reading[0] -= 1
        return {"digits": ""}

    reader = client.app.state.reader
    monkeypatch.setattr(reader, "read_image", slow_read)
    large = encode(Image.new("L", (700, 400), 255))   # over INLINE_PIXELS: read in a thread

    async def uploads():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            single = [http.post("/predict", content=large) for _ in range(4)]
            batches = [http.post("/predict/batch", files=[("files", ("a.png", large, "image/png"))] * 2) for _ in range(2)]
            return await asyncio.gather(*single, *batches)

    answers = asyncio.run(uploads())
    assert [a.status_code for a in answers] == [200] * 6
    assert most[0] == READS_AT_ONCE


def test_a_batch_over_its_body_limit_is_refused(client):
    boundary = "b"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\n").encode()

    def chunks():   # streamed, with no Content-Length: refused as it comes in
        yield part
        for _ in range(MAX_BATCH_BODY // 2**20 + 1):
            yield b"\0" * 2**20
    answer = client.post("/predict/batch", content=chunks(),
                         headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 413 and f"over the limit of {MAX_BATCH_BODY} bytes" in answer.json()["detail"]


def test_a_body_that_stalls_gets_a_408_and_the_next_request_is_served(client, seven, monkeypatch):
    """A client that sends less than it declared, then nothing, does not hold its connection for ever."""
    import asyncio

    from digit_reader import api

    monkeypatch.setattr(api, "BODY_STALL_S", 0.2)

    async def stalled():
        yield seven[:100]
        await asyncio.sleep(2)
        yield seven[100:]

    async def upload():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/predict", content=stalled(), headers={"content-length": str(len(seven))})

    answer = asyncio.run(upload())   # 408 at the stall: the rest, 2 s later, would have made it a 200
    assert answer.status_code == 408 and answer.json()["detail"] == "the body stalled: no byte for 0.2 s (100 bytes received)"
    assert client.post("/predict", content=seven).json()["digits"] == "7"


def test_a_streamed_body_without_length_is_cut_at_the_limit(client):
    def chunks():
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"\0" * 65536
    answer = client.post("/predict", content=chunks())
    assert answer.status_code == 413


# --- a real uvicorn process -------------------------------------------------------------------

def test_real_server_on_loopback(live_server, seven, number):
    with httpx.Client(base_url=live_server, timeout=10) as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.post("/predict", content=seven).json()["digits"] == "7"
        assert http.post("/predict", files={"file": ("n.jpg", number, "image/jpeg")}).json()["digits"] == "2021"
        assert http.post("/predict", content=b"garbage").status_code == 422
    # a client that announces 50 MB is refused at once, before it sends any of it
    with socket.create_connection(("127.0.0.1", int(live_server.rsplit(":", 1)[1])), timeout=5) as raw:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 50000000\r\n\r\n")
        reply = b""
        while b"over the limit" not in reply and (chunk := raw.recv(4096)):
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "over the limit" in reply
    with httpx.Client(base_url=live_server, timeout=10) as http:
        assert http.post("/predict", content=seven).json()["digits"] == "7"


def on_a_notebook_page(image_bytes: bytes) -> bytes:
    """The number, as a photo of a notebook page: pale blue rules, one under the digits and one
    above them, and a red margin line on its left, across the whole picture."""
    number = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    page = Image.new("RGB", (number.width + 160, number.height + 120), (246, 245, 240))
    page.paste(number, (120, 60))
    inked = np.flatnonzero((np.asarray(number.convert("L")) < 128).any(axis=1))
    base, top = 60 + inked[-1], 60 + inked[0] - 12
    draw = ImageDraw.Draw(page)
    for y in (base, top):
        draw.line([(0, y), (page.width, y)], fill=(120, 150, 210), width=2)
    draw.line([(80, 0), (80, page.height)], fill=(220, 60, 60), width=2)
    return encode(page, "JPEG", quality=90)


def test_a_number_on_a_notebook_page_reads_as_on_plain_paper(live_server, number):
    """The rules and the margin line are paper, not digits (digit_reader/paper.py), through a real
    server."""
    with httpx.Client(base_url=live_server, timeout=10) as http:
        read = http.post("/predict", files={"file": ("page.jpg", on_a_notebook_page(number), "image/jpeg")}).json()
    assert read["digits"] == "2021" and read["count"] == 4, read


def on_a_desk(image_bytes: bytes) -> bytes:
    """The number, written on a sheet that lies 8° askew on a wooden desk, photographed from above."""
    number = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    sheet = Image.new("RGB", (number.width + 160, number.height + 120), number.getpixel((0, 0)))
    sheet.paste(number, (80, 60))
    shape = Image.new("L", sheet.size, 255).rotate(8, Image.Resampling.BICUBIC, expand=True)
    sheet = sheet.rotate(8, Image.Resampling.BICUBIC, expand=True)
    desk = Image.new("RGB", (sheet.width * 2, sheet.height * 2), (118, 82, 48))
    draw = ImageDraw.Draw(desk)
    for y in range(-desk.width, desk.height, 11):   # the wood's grain
        draw.line([(0, y), (desk.width, y + desk.width // 3)], fill=(98, 66, 40), width=4)
    desk.paste(sheet, (sheet.width // 3, sheet.height // 2), shape)
    return encode(desk, "JPEG", quality=85)


def test_a_number_on_a_sheet_lying_on_a_desk_reads_as_on_plain_paper(live_server, number):
    """The desk around the sheet is no paper, the sheet no ink, and the sheet is set upright
    (digit_reader/sheet.py), through a real server: the digits' boxes lie on the sheet."""
    with httpx.Client(base_url=live_server, timeout=10) as http:
        read = http.post("/predict", files={"file": ("desk.jpg", on_a_desk(number), "image/jpeg")}).json()
    assert read["digits"] == "2021" and read["count"] == 4, read
    sheet = Image.open(io.BytesIO(on_a_desk(number))).convert("L")
    for digit in read["predictions"]:
        x0, y0, x1, y1 = digit["box"]
        assert np.asarray(sheet.crop((x0, y0, x1, y1))).min() < 80, digit["box"]   # the digit's dark ink


def at_a_sheets_corner(image_bytes: bytes) -> bytes:
    """The number photographed close on a sheet lying on a wooden desk: the desk along the left and
    the bottom of the view only."""
    number = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    photo = Image.new("RGB", (number.width + 240, number.height + 200), (120, 84, 50))
    draw = ImageDraw.Draw(photo)
    for y in range(-photo.width, photo.height, 11):   # the wood's grain
        draw.line([(0, y), (photo.width, y + photo.width // 3)], fill=(100, 70, 42), width=4)
    sheet = Image.new("RGB", (photo.width, photo.height), number.getpixel((0, 0)))
    sheet.paste(number, (100, 60))
    photo.paste(sheet.crop((0, 0, photo.width - 70, photo.height - 60)), (70, 0))
    return encode(photo, "JPEG", quality=85)


def test_a_number_on_a_sheets_corner_reads_as_on_plain_paper(live_server, number):
    """Photographed close, the desk along two sides only: the desk is no ink (digit_reader/sheet.py's
    search along the sides), through a real server."""
    with httpx.Client(base_url=live_server, timeout=10) as http:
        read = http.post("/predict", files={"file": ("corner.jpg", at_a_sheets_corner(number), "image/jpeg")}).json()
    assert read["digits"] == "2021" and read["count"] == 4, read


def askew(image_bytes: bytes, degrees: float) -> bytes:
    """The number photographed with the phone held `degrees` askew: its writing runs uphill."""
    number = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    turned = number.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=number.getpixel((0, 0)))
    return encode(turned, "JPEG", quality=90)


@pytest.mark.parametrize("degrees", [8, -12])
def test_a_number_written_askew_reads_as_written_level(live_server, number, degrees):
    """The line is set level before the line model reads it (digit_reader/line.py), through a real
    server; left askew, the line model read a digit too few, from 5 degrees."""
    with httpx.Client(base_url=live_server, timeout=10) as http:
        read = http.post("/predict", files={"file": ("askew.jpg", askew(number, degrees), "image/jpeg")}).json()
    assert read["digits"] == "2021" and read["count"] == 4, read


def answering_pids(url: str, connections: int) -> set[int]:
    """The pids that answer /health over `connections` fresh connections (the kernel picks a
    worker per connection, not per request)."""
    pids = set()
    for _ in range(connections):
        with httpx.Client(base_url=url, timeout=10) as http:
            pids.add(http.get("/health").json()["pid"])
    return pids


def binds_without_reuseport(port: int) -> bool:
    """Whether a socket that does not share ports (SO_REUSEADDR only) can bind 127.0.0.1:port."""
    with socket.socket() as plain:
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_every_reading_names_the_models_that_answered_it(live_server, reader_project, seven):
    """By their files' MD5s, as dvc.lock records them: two answers with the same headers came from the same models."""
    models = reader_project / "models"
    with httpx.Client(base_url=live_server, timeout=10) as http:
        health = http.get("/health").json()
        answer = http.post("/predict", content=seven)
    assert health["md5"] == md5_of(models / "reader.onnx") and health["line_model"] == {"md5": md5_of(models / "numbers.onnx")}
    assert "warning" not in health
    assert {k: answer.headers[k] for k in ("x-model", "x-model-runtime", "x-model-md5", "x-line-model-md5")} == {
        "x-model": "reader", "x-model-runtime": "onnx", "x-model-md5": health["md5"], "x-line-model-md5": health["line_model"]["md5"]}


def test_the_torch_runtime_names_its_weights_files(reader_project):
    served = Reader(root=reader_project, runtime="torch").served()
    models = reader_project / "models"
    assert served["md5"] == md5_of(models / "reader.pth") and served["line_model"] == {"md5": md5_of(models / "numbers.pth")}


@pytest.mark.server  # starts a server process itself
def test_without_the_line_model_a_server_reads_each_piece_with_the_classifier_and_says_so(
        reader_project, tmp_path, mnist_test_digits, paper):
    root = tmp_path / "project"
    shutil.copytree(reader_project, root, ignore=shutil.ignore_patterns("numbers.*"))  # as after fetching cnn.* alone
    separated = encode(paper(mnist_test_digits[0][[1, 3, 1, 2]], gaps=[9, 5, 12]))  # "2021", digits apart
    with serving_process(root) as url, httpx.Client(base_url=url, timeout=10) as http:
        health = http.get("/health").json()
        answer = http.post("/predict", content=separated)
    assert health["line_model"] is None
    assert health["warning"].startswith(f"{root}/models/numbers.onnx not found") and "digits that touch" in health["warning"]
    assert answer.status_code == 200 and answer.json()["digits"] == "2021"
    assert answer.headers["x-line-model-md5"] == "none"


@pytest.mark.process
def test_the_serving_benchmark_kills_a_server_that_will_not_stop(monkeypatch, capsys):
    """A server that ignores SIGTERM, with a worker of its own, is killed whole, not left running."""
    from benchmarks import serve_load

    deaf = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); print(flush=True); time.sleep(60)")
    server = subprocess.Popen([sys.executable, "-c", deaf], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()  # its worker is started
    worker = psutil.Process(server.pid).children()[0]
    monkeypatch.setattr(serve_load, "STOP_S", 0.5)
    serve_load.stop(server)
    assert server.returncode == -signal.SIGKILL and worker.wait(timeout=5) is None and not worker.is_running()
    assert "did not stop within 0.5 s of SIGTERM; killed with its workers" in capsys.readouterr().err


@pytest.mark.server  # starts server processes itself, without the live_server fixture that marks the others
def test_several_worker_processes_share_the_port_all_serve_and_stop_without_breaking_an_answer(
        reader_project, client, seven):
    from concurrent.futures import ThreadPoolExecutor

    with serving_process(reader_project, "--workers", "2") as url:
        port = int(url.rsplit(":", 1)[1])
        assert not binds_without_reuseport(port)
        # both workers answer: 2 pids over fresh connections (all on one: a chance of 2^-39 in 40)
        deadline, pids = time.monotonic() + 60, set()
        while len(pids) < 2 and time.monotonic() < deadline:  # the second may still be loading its model
            pids |= answering_pids(url, 40)
        assert len(pids) == 2, pids
        worker = psutil.Process(next(iter(pids)))
        assert holds_onnxruntime(libraries(worker))
        assert not holds_onnxruntime(libraries(worker.parent())), "the parent only watches the workers: no model"

        def read(_):
            with httpx.Client(base_url=url, timeout=10) as http:
                return [http.post("/predict", content=seven).json()["digits"] for _ in range(5)]
        with ThreadPoolExecutor(4) as pool:
            answers = [digit for answer in pool.map(read, range(4)) for digit in answer]
        assert answers == ["7"] * 20
        assert service(httpx.get(url + "/health").json()) == service(client.get("/health").json())
        stop_under_load(url, worker.parent(), seven)


def stop_under_load(url: str, server: psutil.Process, body: bytes, clients: int = 4) -> None:
    """SIGTERM to the server while `clients` keep posting `body` on keep-alive connections and one
    more client has stalled halfway through an upload: every request it began to answer is answered
    whole (a 200 that reads "7"), requests still in flight are finished, the stalled upload is cut
    after GRACEFUL_SHUTDOWN_S, and it exits cleanly. A request it no longer takes (the connection
    refused, or closed before a byte of answer) is not an answer; a clean restart behind a balancer
    retries it."""
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks.serve_load import post

    host, port = url.removeprefix("http://").split(":")
    request = post(host, "/predict", body)
    stopped = threading.Event()
    deadline = time.monotonic() + GRACEFUL_SHUTDOWN_S + 30  # a server that never stops fails the test, not hangs it

    def post_until_refused(_) -> list[tuple[bytes, bool]]:
        answers = []  # each answer: the bytes received, and whether the signal had been sent
        while time.monotonic() < deadline:
            try:
                connection = socket.create_connection((host, int(port)), timeout=10)
            except ConnectionRefusedError:
                return answers
            with connection:
                while time.monotonic() < deadline and (received := exchange(connection, request)):
                    answers.append((received, stopped.is_set()))
        return answers

    stalled = socket.create_connection((host, int(port)), timeout=GRACEFUL_SHUTDOWN_S + 30)
    half = request.index(b"\r\n\r\n") + 4 + len(body) // 2
    stalled.sendall(request[:half])
    with stalled, ThreadPoolExecutor(clients) as pool:
        loads = [pool.submit(post_until_refused, k) for k in range(clients)]
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        stopped.set()
        assert server.wait(timeout=GRACEFUL_SHUTDOWN_S + 15) == 0
        answers = [a for load in loads for a in load.result(timeout=15)]
        left = until_closed(stalled)
        assert not left.startswith(b"HTTP/1.1 200"), left  # cut, unanswered or with an error: its body never came
    broken = [received[:300] for received, _ in answers if not reads_seven(received)]
    assert not broken, f"{len(broken)} of {len(answers)} answers came back broken, the first: {broken[0]!r}"
    assert any(after for _, after in answers), "no request was answered after the signal came"


def reads_seven(received: bytes) -> bool:
    head, _, content = received.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: *(\d+)", head, re.I)
    return (head.startswith(b"HTTP/1.1 200 ") and length is not None and len(content) == int(length.group(1))
            and json.loads(content)["digits"] == "7")


def exchange(connection: socket.socket, request: bytes) -> bytes:
    """Send one request and read its answer: the bytes received until the answer was whole, or
    until the server closed the connection (b"" if it closed it before answering at all)."""
    received = b""
    try:
        connection.sendall(request)
        while True:
            head, separator, content = received.partition(b"\r\n\r\n")
            if separator and len(content) >= int(re.search(rb"content-length: *(\d+)", head, re.I).group(1)):
                return received
            chunk = connection.recv(65536)
            if not chunk:
                return received
            received += chunk
    except (BrokenPipeError, ConnectionResetError):
        return received


def until_closed(connection: socket.socket) -> bytes:
    """Every byte the other end sends until it closes the connection."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def service(health: dict) -> dict:
    """What a server promises whichever way it was started: all of /health but the answering pid."""
    return {k: v for k, v in health.items() if k != "pid"}


@pytest.mark.server
def test_every_way_to_start_the_server_gives_the_same_threads_and_limits(live_server, reader_project):
    # `make serve` runs `python -m digit_reader.serve` (live_server; its workers: the test above)
    with serving_process(reader_project, uvicorn_factory=True) as factory:
        from_factory = httpx.get(factory + "/health").json()
    assert service(from_factory) == service(httpx.get(live_server + "/health").json())
    assert from_factory["threads"] == SERVER_THREADS and from_factory["limits"] == LIMITS


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_server_without_its_model_says_so_in_one_line(tmp_path, workers, python_process):
    result = python_process("-m", "digit_reader.serve", "--root", tmp_path, "--workers", workers, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {tmp_path}/models/reader.onnx not found: run `make repro` (or `dvc pull`) first"]


@pytest.mark.parametrize("workers, holder", [("1", "a server"), ("2", "a server"), ("2", "another server's worker")])
def test_a_server_whose_port_is_taken_says_so_and_exits_with_an_error(reader_project, workers, holder, python_process):
    """One line and status 1, even where the port is held by another
    server's worker, whose socket would let ours share the port (SO_REUSEPORT)."""
    taken = listening_socket("127.0.0.1", 0) if holder == "another server's worker" else socket.create_server(("127.0.0.1", 0))
    port = str(taken.getsockname()[1])
    with taken:
        result = python_process("-m", "digit_reader.serve", "--root", reader_project, "--port", port, "--runtime", "onnx",
                                "--workers", workers, cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.mark.parametrize("option, value, message", [("--workers", "0", "must be 1 or more, got 0"),
                                                    ("--port", "99999", "must be a port number, 0-65535, got 99999")])
def test_a_server_of_no_workers_or_no_port_is_refused(option, value, message, python_process):
    result = python_process("-m", "digit_reader.serve", option, value, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and f"argument {option}: {message}" in result.stderr


def test_worker_sockets_share_a_port_hold_it_against_others_and_turn_nagles_algorithm_off():
    """Each worker's own socket listens at once: a second one binds the same port (SO_REUSEPORT),
    a socket without SO_REUSEPORT cannot, and asyncio sets TCP_NODELAY on the connections it
    accepts (without it, responses waited for delayed ACKs)."""
    import asyncio

    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    assert first.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    second = listening_socket("127.0.0.1", port)
    second.close()
    assert not binds_without_reuseport(port)

    async def accepted_nodelay():
        seen = asyncio.get_running_loop().create_future()

        async def handle(reader, writer):
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=first)
        _, writer = await asyncio.open_connection(*first.getsockname())
        nodelay = await asyncio.wait_for(seen, 5)
        writer.close()
        server.close()
        return nodelay

    assert asyncio.run(accepted_nodelay()) != 0


# --- the onnx runtime: models/cnn.onnx in onnxruntime, no torch ------------------------------

def test_the_onnx_app_answers_as_the_torch_app(reader_project, client, seven, number):
    with TestClient(create_app(reader_project, runtime="onnx")) as onnx_client:
        health = onnx_client.get("/health").json()
        assert (health["runtime"], health["arch"], health["model"]) == ("onnx", "FastCNN", "reader")
        for body in (seven, number):
            expected, got = (c.post("/predict?top=2", content=body).json() for c in (client, onnx_client))
            assert got["digits"] == expected["digits"] and got["count"] == expected["count"]
            assert np.allclose([p["probability"] for p in got["predictions"]],
                               [p["probability"] for p in expected["predictions"]], atol=1e-5)
        assert onnx_client.post("/predict", content=b"garbage").status_code == 422


def test_an_app_on_onnx_never_imports_torch(reader_project, seven, tmp_path, python_process):
    (tmp_path / "seven.png").write_bytes(seven)
    code = ("import json, sys; from fastapi.testclient import TestClient; from digit_reader.serve import server_app; "
            "client = TestClient(server_app(sys.argv[1], 'cnn', 'onnx')); "
            "answer = client.post('/predict', content=open(sys.argv[2], 'rb').read()).json(); "
            "print(json.dumps([answer['digits'], client.get('/health').json()['runtime'], 'torch' in sys.modules]))")
    result = python_process("-c", code, reader_project, tmp_path / "seven.png")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["7", "onnx", False]


def served_process(url: str) -> psutil.Process:
    with httpx.Client(base_url=url, timeout=10) as http:
        return psutil.Process(http.get("/health").json()["pid"])


def libraries(process: psutil.Process) -> set[str]:
    return {Path(m.path).name for m in process.memory_maps() if ".so" in m.path}


def holds_onnxruntime(loaded: set[str]) -> bool:
    return any(name.startswith("libonnxruntime") or name.startswith("onnxruntime_pybind") for name in loaded)


@pytest.mark.server  # starts server processes itself, without the live_server fixture that marks the others
def test_a_server_on_onnx_loads_no_torch_and_takes_under_half_the_memory(reader_project, seven):
    """The issue's target, on real server processes: resident memory at most half of torch's."""
    memory = {}
    for runtime in ("onnx", "torch"):
        with serving_process(reader_project, "--runtime", runtime) as url:
            with httpx.Client(base_url=url, timeout=10) as http:
                assert http.get("/health").json()["runtime"] == runtime
                assert all(http.post("/predict", content=seven).json()["digits"] == "7" for _ in range(20))
            process = served_process(url)
            loaded = libraries(process)
            assert holds_onnxruntime(loaded) == (runtime == "onnx"), loaded
            assert any(name.startswith("libtorch") for name in loaded) == (runtime == "torch"), loaded
            memory[runtime] = process.memory_info().rss
    assert memory["onnx"] <= memory["torch"] / 2, memory


# --- fuzz -------------------------------------------------------------------------------------

def seeds(seven: bytes) -> list[bytes]:
    image = Image.open(io.BytesIO(seven))
    small = image.resize((56, 40))
    return [seven, encode(small.convert("RGB"), "JPEG"), encode(small.convert("P"), "GIF"), encode(small, "BMP"),
            encode(small, "WEBP"), encode(small.convert("RGBA"), "PNG")]


@st.composite
def mutated(draw, originals):
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 200))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "header" and len(data) > 30:  # dimensions and sizes live in the first bytes
            data[draw(st.integers(0, 30))] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
    return bytes(data)


def test_fuzzed_images_never_get_a_5xx_or_hang(client, seven):
    originals, seen = seeds(seven), {}

    @settings(max_examples=250, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(st.binary(max_size=2000), mutated(originals)), st.booleans())
    def check(body, as_upload):
        started = time.perf_counter()
        if as_upload:
            answer = client.post("/predict", files={"file": ("f", body, "application/octet-stream")})
        else:
            answer = client.post("/predict", content=body)
        assert answer.status_code in (200, 400, 413, 422), (answer.status_code, answer.text)
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        assert isinstance(answer.json(), dict)
        assert time.perf_counter() - started < 5.0

    check()
    assert seen.get(200, 0) >= 5 and seen.get(422, 0) >= 50, seen  # both decoded and refused images were tried


# --- the serving benchmark (make bench-serve) ---------------------------------------------------

@pytest.mark.server  # starts server processes
def test_the_serving_benchmark_measures_each_runtime_into_its_own_file(reader_project, raw_mnist, tmp_path):
    from benchmarks import serve_load

    results = serve_load.main(["--root", str(reader_project), "--seconds", "1", "--clients", "2", "--workers", "2",
                               "--results", str(tmp_path)])
    assert results[0]["runtime"] == DEFAULT_RUNTIME and {r["runtime"] for r in results} == {"torch", "onnx"}
    for result in results:
        assert result["statuses"] == {"200": result["requests"]} and result["requests_per_s"] > 0
        assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
        memory = result["server_memory_mb_after_load"]
        assert memory["processes"] >= 3 and 0 < memory["pss"] <= memory["rss"]  # the parent and two workers
        assert result["start_to_first_answer_s"] > 0
        name = f"serve-{result['cpu_kind']}-reader-{result['runtime']}-2w-2c.json"
        assert json.loads((tmp_path / name).read_text()) == result
    onnx_run, torch_run = sorted(results, key=lambda r: r["runtime"])
    assert onnx_run["server_memory_mb_after_load"]["pss"] < torch_run["server_memory_mb_after_load"]["pss"]
    [number] = serve_load.main(["--root", str(reader_project), "--seconds", "1", "--clients", "1", "--runtime", "onnx",
                                "--image", "number", "--mnist", str(raw_mnist), "--results", str(tmp_path), "--attack", "1"])
    assert number["statuses"] == {"200": number["requests"]} and number["body_bytes"] != onnx_run["body_bytes"]
    attack = number["attack"]
    assert attack["pixels"] == "8000x4900" and attack["honest"]["statuses"] == {"200": attack["honest"]["requests"]}
    assert attack["hostile"]["statuses"] == {"422": attack["hostile"]["requests"]} and attack["hostile"]["requests"] > 0
    assert attack["honest_throughput_kept"] == round(attack["honest"]["requests_per_s"] / number["requests_per_s"], 3)
    assert (tmp_path / f"serve-{number['cpu_kind']}-reader-onnx-1w-1c-number-attack1.json").exists()
    [batch] = serve_load.main(["--root", str(reader_project), "--seconds", "1", "--clients", "1", "--runtime", "onnx",
                               "--batch", "4", "--results", str(tmp_path)])
    assert batch["statuses"] == {"200": batch["requests"]} and batch["images_per_s"] == round(4 * batch["requests_per_s"], 1)
    assert (tmp_path / f"serve-{batch['cpu_kind']}-reader-onnx-1w-1c-batch4.json").exists()


def test_the_serving_benchmark_without_mnist_for_its_number_is_one_clear_line(tmp_path, python_process):
    result = python_process("-m", "benchmarks.serve_load", "--image", "number", "--mnist", tmp_path,
                            "--results", tmp_path / "results", cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {tmp_path}/t10k-images-idx3-ubyte not found: run `dvc repro download` first"]
    assert not (tmp_path / "results").exists()


def test_the_benchmarks_percentiles_are_nearest_rank():
    from benchmarks.serve_load import percentile

    values = list(range(100, 0, -1))   # 1..100, in any order
    assert [percentile(values, q) for q in (1, 50, 90, 99, 100)] == [1, 50, 90, 99, 100]
    assert percentile([7.0], 50) == percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 51) == 3


def test_serving_results_are_named_by_what_ran():
    from benchmarks.serve_load import RESULTS_DIR, results_path

    committed = {"cpu_kind": "intel-f6m167-amx", "model": "cnn", "runtime": "torch", "server_workers": 2, "clients": 16}
    assert results_path(committed).name == "serve-intel-f6m167-amx-cnn-torch-2w-16c.json"
    assert results_path(committed).exists()  # the run of 2026-11-25, before the runtime was a choice
    assert results_path({**committed, "server_workers": 1}) != results_path(committed)
    assert results_path({**committed, "runtime": "onnx"}) != results_path(committed)
    assert results_path({**committed, "server_workers": None}).name == "serve-intel-f6m167-amx-url-torch-16c.json"
    assert results_path({**committed, "server_workers": None, "runtime": "onnx"}).name.startswith("serve-intel-f6m167-amx-url-onnx")
    assert results_path(committed).parent == RESULTS_DIR
    assert results_path({**committed, "image": "number"}).name == "serve-intel-f6m167-amx-cnn-torch-2w-16c-number.json"
    assert results_path({**committed, "image": "digit"}) == results_path(committed)
    assert results_path({**committed, "batch": 32, "attack": {"clients": 2}}).name.endswith("-16c-batch32-attack2.json")
