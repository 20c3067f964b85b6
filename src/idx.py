"""Reading and writing the IDX format that MNIST ships in (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data in C order. MNIST uses only unsigned bytes.
"""
import struct
from pathlib import Path

import numpy as np

from src.errors import PipelineError

UBYTE = 0x08


class IdxError(PipelineError, ValueError):
    pass


def encode_idx(array: np.ndarray) -> bytes:
    if array.dtype != np.uint8:
        raise IdxError(f"IDX writer supports uint8 only, got {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxError(f"{name}: not an IDX file (bad magic number)")
    if data[2] != UBYTE:
        raise IdxError(f"{name}: unsupported IDX type code 0x{data[2]:02x} (only uint8)")
    ndim = data[3]
    offset = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:offset])
    expected = offset + int(np.prod(shape))
    if len(data) != expected:
        raise IdxError(f"{name}: IDX header says {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    path = Path(path)
    return decode_idx(path.read_bytes(), str(path))
