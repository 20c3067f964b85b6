"""Training on two processes (torchrun, DDP over gloo on 127.0.0.1, CPU).

The model-level tests launch this module itself as the torchrun workers (`python -m
tests.test_distributed <out dir> <run>`, see `worker` at the bottom); the stage-level tests run
the train stage in a copy of the tiny project with train.nproc: 2.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.serve_load import stopped_or_killed
from src import distributed, training
from src.models import build_model
from src.training import fit
from tests.conftest import toy_problem

CFG = {"epochs": 2, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
       "schedule": "onecycle", "warmup": 0.2, "label_smoothing": 0.1, "shift": 0,
       "rotate": 0, "scale": 0, "precision": "fp32"}
# No dropout: the global RNG draws per rank. An MLP has no BatchNorm, whose per-rank batch
# statistics would differ from the global batch's; with neither, DDP's averaged gradient is the
# global batch's gradient and the weights must match up to floating-point rounding.
NET = {"hidden": [64], "dropout": 0.0}
AUGMENTED = {**CFG, "epochs": 1, "shift": 2, "rotate": 5}


def train_toy(cfg):
    """Seeded like the train stage: the same initial weights in every process."""
    torch.manual_seed(0)
    model = build_model("mlp", NET)
    x, y = toy_problem(256)
    history = fit(model, x, y, cfg, seed=0, val=toy_problem(100), progress=False)
    return model, history


def recording_affine(calls: list):
    """training.random_affine, recording each call's batch and its generator's seed in `calls`."""
    original = training.random_affine

    def recording(x, max_degrees, max_scale, generator, fill=0.0):
        calls.append({"x": x.clone(), "seed": generator.initial_seed()})
        return original(x, max_degrees, max_scale, generator, fill)

    return recording


def test_two_processes_match_one_with_the_same_global_batch(two_ranks):
    model, history = train_toy(CFG)
    for rank in two_ranks:
        assert rank["world_size"] == 2 and rank["threads"] >= 1
        for key, value in model.state_dict().items():
            torch.testing.assert_close(rank["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)
        for ours, single in zip(rank["history"], history):
            # global statistics: the training sums and the once-computed validation, all-reduced
            assert ours.train_loss == pytest.approx(single.train_loss, rel=1e-4)
            assert ours.train_acc == single.train_acc and ours.val_acc == single.val_acc
            assert ours.val_loss == pytest.approx(single.val_loss, rel=1e-4)
    torch.manual_seed(0)
    initial = build_model("mlp", NET).state_dict()["layers.1.weight"]
    assert (model.state_dict()["layers.1.weight"] - initial).abs().max() > 0.01  # it did train, far beyond the tolerance


def test_each_rank_takes_its_slice_of_the_shared_permutation_and_augments_on_its_own(two_ranks, monkeypatch):
    calls = []
    monkeypatch.setattr(training, "random_affine", recording_affine(calls))
    train_toy(AUGMENTED)
    halves = [rank["augmented"] for rank in two_ranks]
    assert len(halves[0]) == len(halves[1]) == len(calls) == 256 // 32
    for step, single in enumerate(calls):
        torch.testing.assert_close(torch.cat([halves[0][step]["x"], halves[1][step]["x"]]), single["x"])
    assert halves[0][0]["seed"] != halves[1][0]["seed"]  # different augmentation draws per rank


# --- The train stage with train.nproc: 2, in a copy of the tiny project ---

def two_process_project(tiny, epochs):
    params = tiny.params()
    params["train"]["nproc"] = 2
    params["train"]["mlp"]["epochs"] = epochs
    tiny.set_params(params)
    (tiny.path / "models/mlp.pth").unlink()
    return tiny


def test_the_stage_trains_on_two_processes_and_only_rank_0_writes(tiny):
    project = two_process_project(tiny, epochs=2)
    result = project.repro("train@mlp")
    assert "training on 2 processes" in result.stderr + result.stdout
    log = result.stderr + result.stdout
    assert log.count("train: epoch 1:") == 1 and log.count("train: epoch 2:") == 1  # rank 0 alone logs
    assert (project.path / "models/mlp.pth").exists()
    curves = project.path / "metrics/mlp/train/plots/metrics"
    for curve in ("train/loss.tsv", "val/acc.tsv", "lr.tsv"):
        rows = (curves / curve).read_text().splitlines()
        assert len(rows) == 1 + 2, curve  # a header and one row per epoch: a single writer
    summary = project.read_json("metrics/mlp/train/metrics.json")
    assert summary["step"] == 1 and 0 < summary["val"]["acc"] <= 1
    assert "train.nproc: 2" in (project.path / "dvc.lock").read_text()  # a declared param of the stage


def child_with_rank(pid: int, rank: int, timeout=60) -> int:
    """The pid of the torchrun worker of `rank` among the children of `pid`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except FileNotFoundError:
                    continue
                if f"RANK={rank}".encode() in environ:
                    return int(child)
        time.sleep(0.1)
    raise AssertionError(f"no worker of rank {rank} under {pid}")


def test_a_killed_rank_fails_the_stage_quickly_with_one_line(tiny):
    project = two_process_project(tiny, epochs=500)  # long enough to be killed mid-training
    stage = subprocess.Popen([sys.executable, "-m", "src.train", "mlp"], cwd=project.path, env=project.env,
                             stderr=subprocess.PIPE, text=True)
    lines = []
    while not any("train: epoch 1:" in line for line in lines):  # both ranks are training
        line = stage.stderr.readline()
        assert line, f"the stage ended before its first epoch: {lines}"
        lines.append(line)
    killed = time.monotonic()
    os.kill(child_with_rank(stage.pid, 1), signal.SIGKILL)
    try:
        rest = stage.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:   # the failure this guards against: leave no 500-epoch rank behind
        stopped_or_killed(stage, 0)
        raise
    assert stage.returncode == 2 and time.monotonic() - killed < 30
    errors = [line for line in (lines + rest.splitlines()) if line.startswith("error:") or "Traceback" in line]
    assert errors == ["error: rank 1 of 2 was killed by SIGKILL; the other ranks were stopped"], rest
    assert not (project.path / "models/mlp.pth").exists()


def test_an_error_in_the_ranks_is_one_line(tiny):
    project = two_process_project(tiny, epochs=1)
    (project.path / "data/processed/train.pt").unlink()  # every rank fails to read it
    result = project.run(sys.executable, "-m", "src.train", "mlp", check=False)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]
    assert len(errors) == 1 and "train.pt not found" in errors[0], result.stderr


# --- The torchrun worker for the model-level tests ---

def worker(out: Path) -> None:
    with distributed.process_group(torch.device("cpu")):
        model, history = train_toy(CFG)
        augmented = []
        training.random_affine = recording_affine(augmented)
        train_toy(AUGMENTED)
        torch.save({"world_size": distributed.world_size(), "threads": torch.get_num_threads(),
                    "state": model.state_dict(), "history": history, "augmented": augmented},
                   out / f"rank{distributed.rank()}.pt")


if __name__ == "__main__":   # ended as the train stage's ranks are (run_worker)
    distributed.run_worker(worker, Path(sys.argv[1]))
