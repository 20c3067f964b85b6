"""The HTTP API and the draw-a-digit page.

    make serve        # python -m digit_reader.serve: http://127.0.0.1:8000, the page; /docs, the API
    uvicorn --factory digit_reader.api:app_from_environment    # the same, under your own uvicorn options

- `POST /predict` (an image as a multipart upload or as the raw body; `?top=K`): the JSON of
  `python -m digit_reader.predict --json`, without `file`; its headers say which models answered
  (`X-Model`, `X-Model-Runtime`, `X-Model-MD5`, `X-Line-Model-MD5`: `none` without the line model).
- `GET /health`: the models being served (each file's MD5, as dvc.lock records it), the runtime,
  a `warning` when the line model's file is missing (each piece of ink is then read as one digit),
  and the answering process's pid (with several workers, which one answered).
- `GET /`: the page (digit_reader/static/), served by the app itself: no CDN, it works offline.

The model is loaded once, when the app is created. Bad input never reaches a 5xx: a body over
MAX_BODY bytes is refused before it is read (413), an empty body or a broken upload gets 400,
bytes that are not a readable image, or one too large in pixels, get 422; each with a JSON
`{"detail": "..."}` naming the problem.
"""
import os
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from digit_reader.image import ImageError
from digit_reader.reader import DEFAULT_RUNTIME, Reader

MAX_BODY = 10 * 1024 * 1024   # bytes; a phone photo is 2-8 MB
INLINE_BELOW = 64 * 1024      # smaller images (a drawn digit: ~5 KB) are read on the event loop,
# which saves a thread hand-off per request; larger ones in a thread, so that a big photo never
# stalls the other clients
STATIC = Path(__file__).parent / "static"


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


async def read_body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it is known to exceed MAX_BODY: from
    Content-Length before reading anything, else while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, f"invalid Content-Length header: {declared!r}")
        if int(declared) > MAX_BODY:
            raise BadRequest(413, f"body of {int(declared)} bytes is over the limit of {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadRequest(413, f"body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def image_bytes(request: Request) -> bytes:
    """The image: the first file of a multipart/form-data upload (field `file` preferred), or
    the raw body for any other content type."""
    body = await read_body(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        if not body:
            raise BadRequest(400, "empty body: send an image as the body or as a multipart upload")
        return body

    async def once():
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=4, max_fields=16,
                                     max_part_size=MAX_BODY).parse()
    except (MultiPartException, KeyError, ValueError) as error:
        raise BadRequest(400, f"malformed multipart upload: {error}") from None
    files = [v for k, v in form.multi_items() if isinstance(v, UploadFile)]
    files.sort(key=lambda f: f is not form.get("file"))
    if not files:
        raise BadRequest(400, "multipart upload without a file: send the image in a field named `file`")
    data = await files[0].read()
    await form.close()
    if not data:
        raise BadRequest(400, f"the uploaded file {files[0].filename!r} is empty")
    return data


PREDICT_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
}}}


def create_app(root: Path | str = ".", model: str = "cnn", runtime: str = DEFAULT_RUNTIME,
               threads: int | None = None) -> FastAPI:
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

    @app.post("/predict", openapi_extra=PREDICT_DOC,
              summary="Read the digits in an image (multipart upload or raw body)")
    async def predict(request: Request, top: int = Query(3, ge=1, le=10, description="classes listed per digit")):
        data = await image_bytes(request)
        try:
            if len(data) < INLINE_BELOW:
                result = reader.read(data, top)
            else:
                result = await run_in_threadpool(reader.read, data, top)
        except ImageError as error:
            raise BadRequest(422, str(error)) from None
        return JSONResponse(result, headers=answered_by)  # plain JSON types already: skips FastAPI's encoder

    @app.get("/health", summary="Liveness, which models answer (their files' MD5s) in which runtime, by which process")
    async def health():
        warning = {"warning": reader.without_lines} if reader.without_lines else {}
        return {"status": "ok", **served, **warning, "pid": os.getpid()}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory: `uvicorn --factory digit_reader.api:app_from_environment`; the project
    directory, model and runtime come from DIGITS_ROOT (default `.`), DIGITS_MODEL (default `cnn`)
    and DIGITS_RUNTIME (default DEFAULT_RUNTIME)."""
    return create_app(os.environ.get("DIGITS_ROOT", "."), os.environ.get("DIGITS_MODEL", "cnn"),
                      os.environ.get("DIGITS_RUNTIME", DEFAULT_RUNTIME))
