import numpy as np
import pytest

from src.idx import IdxError, decode_idx, encode_idx, read_idx


def test_header_is_big_endian_magic_and_dims():
    data = encode_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert data[:4] == bytes([0, 0, 0x08, 2])
    assert data[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert data[12:] == bytes(range(6))


@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_round_trip(shape, tmp_path):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "a-idx"
    path.write_bytes(encode_idx(array))
    np.testing.assert_array_equal(read_idx(path), array)


def test_rejects_non_uint8():
    with pytest.raises(IdxError, match="uint8"):
        encode_idx(np.zeros(3, dtype=np.int32))


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d[:-1], "header says"),
    (lambda d: d + b"\0", "header says"),
    (lambda d: b"\1" + d[1:], "bad magic"),
    (lambda d: d[:2] + b"\x0d" + d[3:], "type code"),
])
def test_rejects_malformed(corrupt, message):
    data = encode_idx(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(IdxError, match=message):
        decode_idx(corrupt(data), "x")
