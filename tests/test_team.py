"""End-to-end: working as a team (docs/team-work.md): readable `dvc metrics diff`, a DVC
remote shared through `dvc push`/`dvc pull` and its run cache, experiments passed between clones
through a bare git `origin`, queued sweeps, `dvc artifacts get`, and interrupted or colliding runs.

One setup (conftest's `team`, made once a session) does the only training most of these tests
need: machine A (a copy of the tiny build) with a local-directory remote, pushed to a bare
`origin`, that also trained one mlp-only change. The other machines are `git clone`s of `origin`.
"""
import json
import signal
import subprocess
import sys
import time

import numpy
import psutil
import yaml

from tests.conftest import MLP_CHANGE, Project, commit_all, git, ran, set_mlp

TRAINING_SECONDS_MAX = 120  # a stalled stage fails the test rather than hanging it


def clone(origin, path) -> Project:
    project = Project(path)
    subprocess.run(["git", "clone", "-q", str(origin), str(path)], check=True, capture_output=True)
    return project


def test_metrics_diff_after_an_mlp_change_shows_only_mlp_results(team):
    changed = team["changed"]
    assert changed["ran"] == ["train@mlp", "evaluate@mlp", "export@mlp"]
    diff = changed["diff"]
    assert list(diff) == ["metrics/mlp.json"], changed["diff_text"]  # nothing about the unchanged cnn
    rows = diff["metrics/mlp.json"]
    assert 1 <= len(rows) <= 5 and set(rows) <= {"test.accuracy", "test.loss", "test.errors", "params",
                                                  "test_tta.accuracy", "test_tta.errors"}, changed["diff_text"]
    assert rows["test.accuracy"]["new"] == changed["metrics"]["test"]["accuracy"]
    # per-class scores are a bar chart, old and new side by side, one bar per digit and revision
    (per_class,) = changed["plots"]["data"]["metrics/mlp/per_class.csv"]
    values = per_class["content"]["data"]["values"]
    assert per_class["content"]["mark"]["type"] == "bar"
    assert sorted((v["rev"], v["class"]) for v in values) == sorted((rev, str(c)) for rev in ("main", "workspace")
                                                                    for c in range(10))


def test_evaluate_writes_few_metrics_and_keeps_timings_apart(team):
    a = team["a"]
    for model in ("mlp", "cnn"):
        metrics = a.read_json(f"metrics/{model}.json")
        assert metrics.keys() == {"test", "params", "test_tta"}  # the tiny build has TTA on
        numbers = [v for section in metrics.values() for v in (section.values() if isinstance(section, dict) else [section])]
        assert len(numbers) <= 8
        speed = a.read_json(f"metrics/{model}/speed.json")
        train_summary = a.read_json(f"metrics/{model}/train/metrics.json")
        assert speed["train_time_s"] == train_summary.get("train_time_s")
        assert speed["throughput_img_s"] > 0 and speed["latency_batch1_ms"] > 0 and speed["precision"] in ("fp32", "bf16")
        rows = (a.path / f"metrics/{model}/per_class.csv").read_text().splitlines()
        assert rows[0] == "class,precision,recall,f1" and [r.split(",")[0] for r in rows[1:]] == [str(c) for c in range(10)]
    shown = json.loads(a.dvc("metrics", "show", "--json").stdout)
    assert "speed" not in json.dumps(shown) and "per_class" not in json.dumps(shown)


def test_a_clone_pulls_instead_of_retraining_and_restores_a_run_from_the_run_cache(team, tmp_path):
    b = clone(team["origin"], tmp_path / "b")
    b.dvc("pull")
    assert b.dvc("status").stdout.strip() == "Data and pipelines are up to date."
    assert ran(b.repro()) == []
    assert {m: b.md5(f"models/{m}.pth") for m in ("mlp", "cnn")} == team["main"]

    # A configuration A ran and B never did: its outputs come from the run cache, without training.
    # `--pull` fetches the run cache and the outputs of the runs it restores; `dvc pull --run-cache`
    # alone would fetch only the outputs that dvc.lock names, and the next plain `dvc repro` would train.
    set_mlp(b, MLP_CHANGE)
    result = b.repro("--pull")
    assert "Stage 'train@mlp' is cached - skipping run, checking out outputs" in result.stdout
    # evaluate and export rerun (seconds): `dvc push --run-cache` sends run-cache entries, not the
    # objects of git-tracked (`cache: false`) outputs such as metrics/mlp.json, so those runs are not restorable
    assert ran(result) == ["evaluate@mlp", "export@mlp"], result.stdout
    assert b.md5("models/mlp.pth") == team["changed"]["md5"]
    assert b.read_json("metrics/mlp.json") == team["changed"]["metrics"]


def shown_experiment(rows: list, name: str) -> dict:
    """The params and metrics `dvc exp show --json` gives for the experiment `name`."""
    (exp,) = [e for row in rows for e in (row.get("experiments") or []) if e.get("name") == name]
    return exp["revs"][0]["data"]


def test_an_experiment_run_with_set_params_is_listed_by_exp_show(team):
    data = shown_experiment(team["exp_show"], "mlp-e2")
    assert {k: data["params"]["params.yaml"]["data"]["train"]["mlp"][k] for k in MLP_CHANGE} == MLP_CHANGE
    assert data["metrics"]["metrics/mlp.json"]["data"] == team["changed"]["metrics"]
    assert "Stage 'train@mlp' is cached - skipping run" in team["exp_run"]  # A had run it before


def test_an_experiment_pushed_from_one_clone_is_pulled_compared_and_applied_in_another(team, tmp_path):
    c = clone(team["origin"], tmp_path / "c")
    assert "mlp-e2" in c.dvc("exp", "list", "origin").stdout
    c.dvc("exp", "pull", "origin", "mlp-e2")
    data = shown_experiment(json.loads(c.dvc("exp", "show", "--json").stdout), "mlp-e2")
    assert data["params"]["params.yaml"]["data"]["train"]["mlp"]["epochs"] == MLP_CHANGE["epochs"]
    assert data["metrics"]["metrics/mlp.json"]["data"] == team["changed"]["metrics"]

    c.dvc("exp", "apply", "mlp-e2")
    c.dvc("pull")
    assert c.md5("models/mlp.pth") == team["changed"]["md5"]
    assert ran(c.repro()) == []  # nothing to retrain


# Runs the fetched file as someone without this repository would: numpy and onnxruntime only.
READ_WITH_ONNXRUNTIME = """
import json, sys
import numpy, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1])
pixels = numpy.load(sys.argv[2])[:, None].astype(numpy.float32) / 255
print(json.dumps({"predictions": session.run(["logits"], {"pixels": pixels})[0].argmax(1).tolist(),
                  "torch": "torch" in sys.modules}))
"""


def test_artifacts_get_fetches_a_registered_model_through_the_remote(team, tmp_path, mnist_test_digits):
    declared = yaml.safe_load((team["a"].path / "dvc.yaml").read_text())["artifacts"]
    assert {name: a["type"] for name, a in declared.items()} == {"mlp": "model", "cnn": "model", "mlp-onnx": "model",
                                                                 "cnn-onnx": "model", "reader-onnx": "model"}
    assert all("onnx" in declared[name]["labels"] for name in ("mlp-onnx", "cnn-onnx", "reader-onnx"))
    # Registering a version is a GTO-style git tag; `dvc artifacts get` finds the latest one.
    for name in ("cnn", "cnn-onnx"):
        git(team["a"], "tag", "-a", f"{name}@v1.0.0", "-m", f"Registering artifact {name} version 1.0.0", "main")
        git(team["a"], "push", "-q", "origin", f"{name}@v1.0.0")
    outside = Project(tmp_path / "elsewhere")
    outside.path.mkdir()
    outside.env["DVC_NO_ANALYTICS"] = "1"
    outside.dvc("artifacts", "get", str(team["origin"]), "cnn", "-o", "cnn.pth")
    assert outside.md5("cnn.pth") == team["main"]["cnn"]

    outside.dvc("artifacts", "get", str(team["origin"]), "cnn-onnx", "-o", "cnn.onnx")
    images, labels = mnist_test_digits
    numpy.save(outside.path / "digits.npy", images)
    result = outside.run(sys.executable, "-I", "-c", READ_WITH_ONNXRUNTIME, "cnn.onnx", "digits.npy")
    read = json.loads(result.stdout)
    assert read["torch"] is False
    # the registered file predicts, digit for digit, what the evaluate stage's PyTorch model did
    evaluated = [int(row.split(",")[1]) for row in (team["a"].path / "metrics/cnn/confusion.csv").read_text().split()[1:]]
    assert read["predictions"] == evaluated
    accuracy = team["a"].read_json("metrics/cnn.json")["test"]["accuracy"]
    assert round(float(numpy.mean(numpy.array(read["predictions"]) == labels)), 6) == accuracy > 0.5


def test_a_queued_grid_runs_and_both_experiments_are_listed(tiny):
    commit_all(tiny, "baseline")
    queued = tiny.dvc("exp", "run", "--queue", "-S", "train.mlp.lr=0.05,0.2")
    assert queued.stdout.count("Queued experiment") == 2, queued.stdout
    tiny.dvc("exp", "run", "--run-all", "-j", "1")
    rows = json.loads(tiny.dvc("exp", "show", "--json").stdout)
    experiments = [e["revs"][0]["data"] for row in rows for e in (row.get("experiments") or [])]
    by_lr = {d["params"]["params.yaml"]["data"]["train"]["mlp"]["lr"]: d for d in experiments}
    assert set(by_lr) == {0.05, 0.2}
    for data in by_lr.values():
        assert 0 < data["metrics"]["metrics/mlp.json"]["data"]["test"]["accuracy"] <= 1
    table = tiny.dvc("exp", "show", "--csv", "--sort-by", "metrics/mlp.json:test.accuracy", "--drop", "train|data").stdout
    assert table.splitlines()[0].startswith("Experiment,") and "test.accuracy" in table


# --- Interrupted and colliding runs: a slower mlp, so that training is caught while it runs ---

def start_repro(project: Project) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project.path, env=project.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def training_process(repro: subprocess.Popen) -> psutil.Process:
    """The `python -m src.train` process a running `dvc repro` started."""
    deadline = time.monotonic() + TRAINING_SECONDS_MAX
    while time.monotonic() < deadline:
        assert repro.poll() is None, repro.communicate()
        for child in psutil.Process(repro.pid).children(recursive=True):
            try:
                if "src.train" in child.cmdline():
                    return child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.02)
    raise AssertionError("dvc repro never started training")


def wait_for(path, repro: subprocess.Popen) -> None:
    deadline = time.monotonic() + TRAINING_SECONDS_MAX
    while not path.exists():
        assert repro.poll() is None and time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_second_repro_is_refused_at_once_and_a_killed_training_leaves_nothing_behind(tiny):
    """One run caught mid-training: a second `dvc repro` beside it fails at once and changes
    nothing, the first goes on; killed, it leaves no model and no lock entry; the next repro trains."""
    lock_before = (tiny.path / "dvc.lock").read_text()
    set_mlp(tiny, {"epochs": 30})   # SIGTERM must find it still training after its first epoch, however busy the machine
    repro = start_repro(tiny)
    trainer = training_process(repro)
    trainer.send_signal(signal.SIGSTOP)  # hold the first run mid-stage, whatever the machine's speed
    try:
        files = ["dvc.lock", "params.yaml", "models/cnn.pth", "metrics/cnn.json"]
        before = {f: tiny.md5(f) for f in files}
        start = time.monotonic()
        second = tiny.repro(check=False)
        seconds = time.monotonic() - start
        # DVC 3 holds the repo lock only while planning; during a run, each stage's deps and outs
        # are read/write-locked (.dvc/tmp/rwlock) and a second run stops at the first of them.
        assert second.returncode != 0, second.stdout
        assert "is busy, it is being blocked by" in second.stderr and f"(PID {repro.pid})" in second.stderr, second.stderr
        assert seconds < 30 and "Running stage" not in second.stdout
        assert {f: tiny.md5(f) for f in files} == before
    finally:
        trainer.send_signal(signal.SIGCONT)
    wait_for(tiny.path / "metrics/mlp/train/metrics.json", repro)  # the first run went on: DVCLive logged epoch 1 of 30

    trainer.send_signal(signal.SIGTERM)
    stdout, stderr = repro.communicate(timeout=TRAINING_SECONDS_MAX)
    assert repro.returncode != 0 and "failed to reproduce 'train@mlp'" in stderr, stderr
    assert not (tiny.path / "models/mlp.pth").exists()
    assert not list((tiny.path / "models").glob(".mlp.pth.*"))  # no half-written temporary either
    assert (tiny.path / "dvc.lock").read_text() == lock_before  # no entry claims a model of the new params
    assert "train@mlp" in tiny.dvc("status").stdout

    result = tiny.repro()
    assert ran(result) == ["train@mlp", "evaluate@mlp", "export@mlp"]
    assert (tiny.path / "models/mlp.pth").exists()
    assert tiny.dvc("status").stdout.strip() == "Data and pipelines are up to date."
