"""The HTTP API and the draw-a-digit page.

    make serve        # python -m digit_reader.serve: http://127.0.0.1:8000, the page; /docs, the API
    uvicorn --factory digit_reader.api:app_from_environment    # the same, under your own uvicorn options

- `POST /predict` (an image as a multipart upload or as the raw body; `?top=K`): the JSON of
  `python -m digit_reader.predict --json`, without `file`; its headers say which models answered
  (`X-Model`, `X-Model-Runtime`, `X-Model-MD5`, `X-Line-Model-MD5`: `none` without the line model).
- `POST /predict/batch` (several images in one multipart upload, up to MAX_BATCH_FILES and
  MAX_BATCH_BODY bytes; `?top=K`): `{"count": N, "results": [...]}`, one entry per file, in
  order, each `{"index", "file", ...}` with the reading of `/predict`, or with `error` and its
  `status` for an image that cannot be read (the others are read all the same).
- `GET /health`: the models being served (each file's MD5, as dvc.lock records it), the runtime
  and its threads, the limits below, a `warning` when the line model's file is missing (each
  piece of ink is then read as one digit), and the answering process's pid (with several
  workers, which one answered).
- `GET /`: the page (digit_reader/static/), served by the app itself: no CDN, it works offline.

The model is loaded once, when the app is created, on SERVER_THREADS threads: the same service
whichever way it starts. Bad input never reaches a 5xx: a body over MAX_BODY bytes is refused
before it is read (413), an empty body or a broken upload gets 400, bytes that are not a
readable image, one too large in pixels or a decompression bomb (digit_reader/image.py's
`open_image`, from the header alone) get 422; each with a JSON `{"detail": "..."}` naming the
problem. Only a small image is read on the event loop; the others in a thread, so that no
image stalls the other clients.
"""
import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from digit_reader.image import (MAX_PIXELS, MAX_PIXELS_PER_BYTE, MAX_SIDE, RATIO_FROM_PIXELS, ImageError, load,
                                open_image, pixels)
from digit_reader.reader import DEFAULT_MODEL, DEFAULT_RUNTIME, ModelError, Reader

MAX_BODY = 10 * 1024 * 1024   # bytes; a phone photo is 2-8 MB
MAX_BATCH_FILES = 64          # images in one /predict/batch (a scanned form's boxes)
MAX_BATCH_BODY = 32 * 1024 * 1024
BODY_STALL_S = 30.0           # seconds a body may send nothing: a phone's upload on a bad line still sends within that
# Images of at most this many pixels (the page's drawing is 400 x 200) are read on the event
# loop, which saves a thread hand-off per request; larger ones, whatever their bytes, in a thread
# (the evidence: benchmarks/notes/serving.md#2026-12-02-hostile-images-bounded-issue-24)
INLINE_PIXELS = 250_000
# The threads that read large images and batches, per process: each large image takes a few hundred
# MB while it is decoded, and each thread keeps what it took (glibc's malloc gives every thread an
# arena of its own), so a thread per upload took a process to 2.4 GB under 8 uploads of 40
# megapixels, each within the limits (benchmarks/notes/serving.md#2026-12-04-nineteenth-session-large-images-read-two-at-a-time).
READS_AT_ONCE = 2
READERS = ThreadPoolExecutor(READS_AT_ONCE, thread_name_prefix="reader")
SERVER_THREADS = 1  # per process: one image is a few small convolutions, threads cost more than they save
STATIC = Path(__file__).parent / "static"


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to exceed `limit` bytes: from
    Content-Length before reading anything, else while it streams in; and refused (408) if it
    stalls for BODY_STALL_S, so that a client sending less than it declared does not hold its
    connection for ever (uvicorn has no such timeout)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, f"invalid Content-Length header: {declared!r}")
        if int(declared) > limit:
            raise BadRequest(413, f"body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    stream = aiter(request.stream())
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), BODY_STALL_S)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise BadRequest(408, f"the body stalled: no byte for {BODY_STALL_S:g} s ({size} bytes received)") from None
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def uploaded_files(request: Request, body: bytes, max_files: int, too_many: str,
                         only_files: bool = False) -> list[tuple[str, str, bytes]]:
    """The files of a multipart/form-data upload, in order: (field, file name, bytes) each. Over
    `max_files`, BadRequest(400, too_many); with `only_files`, a part that is not a file (no file
    name: an image pasted as text) is refused rather than skipped, which would shift the others."""
    async def once():
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=max_files, max_fields=16,
                                     max_part_size=MAX_BODY).parse()
    except (MultiPartException, KeyError, ValueError) as error:
        raise BadRequest(400, too_many if str(error).startswith("Too many files")
                         else f"malformed multipart upload: {error}") from None
    parts = form.multi_items()
    fields = [(position, key) for position, (key, value) in enumerate(parts) if not isinstance(value, UploadFile)]
    if only_files and fields:
        await form.close()
        position, key = fields[0]
        raise BadRequest(400, f"part {position + 1} of the upload (field {key!r}) is not a file: send each image as "
                              f"a file, with a file name (curl: -F {key}=@image.png)")
    uploads = [(key, value.filename or "", await value.read()) for key, value in parts if isinstance(value, UploadFile)]
    await form.close()
    return uploads


async def image_bytes(request: Request) -> bytes:
    """The image: the one file of a multipart/form-data upload, or the raw body for any other
    content type."""
    body = await read_body(request, MAX_BODY)
    if not is_multipart(request):
        if not body:
            raise BadRequest(400, "empty body: send an image as the body or as a multipart upload")
        return body
    files = await uploaded_files(request, body, MAX_BATCH_FILES,
                                 too_many=f"more than {MAX_BATCH_FILES} files in one upload: /predict reads one image")
    if not files:
        raise BadRequest(400, "multipart upload without a file: send the image as a file (with a file name), "
                              "in a field named `file`")
    if len(files) > 1:
        raise BadRequest(400, f"{len(files)} files in one upload: /predict reads one image; send several to /predict/batch")
    _, name, data = files[0]
    if not data:
        raise BadRequest(400, f"the uploaded file {name!r} is empty")
    return data


PREDICT_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
}}}
BATCH_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": MAX_BATCH_FILES,
        "description": f"the images, read in this order (any field name, every part a file; at most {MAX_BATCH_FILES} files "
                       f"and {MAX_BATCH_BODY // 2**20} MB in all)"}}}},
}}}
LIMITS = {"max_body_bytes": MAX_BODY, "body_stall_s": BODY_STALL_S, "max_batch_files": MAX_BATCH_FILES, "max_batch_bytes": MAX_BATCH_BODY,
          "max_pixels": MAX_PIXELS, "max_side": MAX_SIDE, "max_pixels_per_byte": MAX_PIXELS_PER_BYTE,
          "pixels_per_byte_checked_above": RATIO_FROM_PIXELS}


def create_app(root: Path | str = ".", model: str = DEFAULT_MODEL, runtime: str = DEFAULT_RUNTIME,
               threads: int | None = SERVER_THREADS) -> FastAPI:
    """The app, with the project's model loaded in `runtime` (torch: models/<model>.pth; onnx:
    models/<model>.onnx) on `threads` CPU threads (None: the runtime's default); ModelError if
    it is missing."""
    reader = Reader(model, root, runtime, threads)
    # /docs (Swagger UI) with its JS and CSS served by the app itself, not FastAPI's default CDN
    app = FastAPIOffline(title="MNIST digits", version="1", redoc_url=None,
                         description="Read handwritten digits and numbers from images, MNIST-style.")
    app.state.reader = reader
    served = reader.served()
    # Every reading says which models made it, so that a client can tell two answers' models apart.
    answered_by = {"X-Model": served["model"], "X-Model-Runtime": served["runtime"], "X-Model-MD5": served["md5"],
                   "X-Line-Model-MD5": served["line_model"]["md5"] if served["line_model"] else "none"}

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, error: BadRequest):
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        # one line, as every other error here, not FastAPI's list of objects
        problems = "; ".join(f"{' '.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors())
        return JSONResponse({"detail": problems}, status_code=422)

    @app.post("/predict", openapi_extra=PREDICT_DOC,
              summary="Read the digits in an image (multipart upload or raw body)")
    async def predict(request: Request, top: int = Query(3, ge=1, le=10, description="classes listed per digit")):
        data = await image_bytes(request)
        try:
            image = open_image(data)  # the header alone: what reading it will cost, bombs refused
            if pixels(image) <= INLINE_PIXELS:
                result = reader.read_image(load(image), top)
            else:
                result = await in_reader_thread(lambda: reader.read_image(load(image), top))
        except ImageError as error:
            raise BadRequest(422, str(error)) from None
        return JSONResponse(result, headers=answered_by)  # plain JSON types already: skips FastAPI's encoder

    @app.post("/predict/batch", openapi_extra=BATCH_DOC,
              summary=f"Read several images of one multipart upload (at most {MAX_BATCH_FILES}), one result each, in order")
    async def predict_batch(request: Request, top: int = Query(3, ge=1, le=10, description="classes listed per digit")):
        if not is_multipart(request):
            raise BadRequest(415, "send the images as a multipart/form-data upload, one file each")
        files = await uploaded_files(request, await read_body(request, MAX_BATCH_BODY), MAX_BATCH_FILES,
                                     too_many=f"too many files in one upload: at most {MAX_BATCH_FILES}", only_files=True)
        if not files:
            raise BadRequest(400, "multipart upload without a file: send each image as a file")
        results = await in_reader_thread(lambda: read_batch(reader, [(name, data) for _, name, data in files], top))
        return JSONResponse({"count": len(results), "results": results}, headers=answered_by)

    @app.get("/health", summary="Liveness, which models answer (their files' MD5s) in which runtime, by which process")
    async def health():
        warning = {"warning": reader.without_lines} if reader.without_lines else {}
        return {"status": "ok", **served, **warning, "limits": LIMITS, "pid": os.getpid()}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def in_reader_thread(read):
    """`read()` in one of the READERS threads, the event loop free meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(READERS, read)


def read_batch(reader: Reader, files: list[tuple[str, bytes]], top: int) -> list[dict]:
    """Each file's reading, or its error: one unreadable image does not cost the others theirs."""
    results = []
    for index, (name, data) in enumerate(files):
        entry = {"index": index, "file": name}
        try:
            if not data:
                raise BadRequest(400, f"the uploaded file {name!r} is empty")
            results.append({**entry, **reader.read(data, top)})
        except BadRequest as error:
            results.append({**entry, "error": error.detail, "status": error.status})
        except ImageError as error:
            results.append({**entry, "error": str(error), "status": 422})
    return results


def server_app(root: str = ".", model: str = DEFAULT_MODEL, runtime: str = DEFAULT_RUNTIME) -> FastAPI:
    """The app for a server process; a missing or mismatched model is one line and exit 2."""
    try:
        return create_app(root, model, runtime)
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def app_from_environment() -> FastAPI:
    """uvicorn's factory: `uvicorn --factory digit_reader.api:app_from_environment`; the project
    directory, model and runtime come from DIGITS_ROOT (default `.`), DIGITS_MODEL (default DEFAULT_MODEL)
    and DIGITS_RUNTIME (default DEFAULT_RUNTIME)."""
    return server_app(os.environ.get("DIGITS_ROOT", "."), os.environ.get("DIGITS_MODEL", DEFAULT_MODEL),
                      os.environ.get("DIGITS_RUNTIME", DEFAULT_RUNTIME))
