import json
import re
import subprocess

import pytest
import torch

from benchmarks.hardware import RESULTS_DIR, cpu_kind, git_commit, hardware
from benchmarks.time_to_accuracy import RECIPES, inference_speeds, load_data, public_fastest_net, results_path, table
from src.config import load_params
from src.errors import PipelineError
from src.models import build_model
from tools.presets import PRESETS_DIR, apply
from src.training import fit
from src.weights import count_parameters
from tests.conftest import ROOT

PRESETS = sorted(p.stem for p in (ROOT / PRESETS_DIR).glob("*.yaml"))


def test_the_presets_exist():
    assert {"fast", "best", "notebook"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_applies_to_the_committed_params_and_validates(name):
    params = apply(name)
    assert params != load_params()  # it changes something
    assert params["train"]["mlp"] == load_params()["train"]["mlp"]  # presets tune the CNN only


def test_the_notebook_preset_is_the_notebooks_recipe():
    cfg = apply("notebook")["train"]["cnn"]
    assert cfg["arch"] == "seed_cnn" and cfg["net"] == {}
    assert (cfg["optimizer"], cfg["lr"], cfg["batch_size"], cfg["epochs"], cfg["schedule"], cfg["shift"]) == \
        ("adam", 0.001, 64, 5, "constant", 0)


def test_an_unknown_preset_is_one_clear_line():
    with pytest.raises(PipelineError, match=r"presets/nope.yaml: no such preset \(known: .*fast"):
        apply("nope")


def test_a_preset_runs_dvc_exp_run_with_its_overrides_and_prints_it_as_a_shell_takes_it(monkeypatch, capsys):
    import shlex
    import subprocess

    from tools import presets

    called = []
    monkeypatch.setattr(subprocess, "call", lambda command: called.append(command) or 0)
    with pytest.raises(SystemExit) as ended:
        presets.main("fast", "--queue")
    (command,) = called
    overrides = presets.overrides("fast")
    assert ended.value.code == 0 and command[1:] == ["-m", "dvc", "exp", "run", "-n", "fast",
                                                     *[arg for o in overrides for arg in ("-S", o)], "--queue"]
    printed = capsys.readouterr().out.strip()
    assert shlex.split(printed) == command[2:]   # pasted into a shell: the same arguments, brackets and all
    assert "'train.cnn.net.widths=[16,16,48]'" in printed


@pytest.mark.parametrize("name", ["fast", "best"])
def test_preset_trains_briefly(name):
    cfg = {**apply(name)["train"]["cnn"], "epochs": 1}
    torch.manual_seed(0)
    x, y = torch.randn(2 * cfg["batch_size"], 1, 28, 28), torch.randint(0, 10, (2 * cfg["batch_size"],))
    model = build_model(cfg["arch"], cfg["net"])
    history = fit(model, x, y, cfg, seed=0, progress=False)
    assert len(history) == 1 and history[0].train_loss > 0


def test_public_fastest_net_is_as_published():
    net = public_fastest_net()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(net) == (25 * 24 + 24) + (24 * 9 * 32 + 32) + (800 * 256 + 256) + (256 * 10 + 10)


def test_every_recipe_runs_a_few_steps_on_real_data(raw_mnist):
    data = load_data(torch.device("cpu"), raw_mnist)
    assert data["train_x"].shape == (60000, 1, 28, 28) and data["test_y"].shape == (10000,)
    for name, train in RECIPES.items():
        model, seconds = train(data, seed=0, device=torch.device("cpu"), max_steps=3)
        assert seconds > 0 and model(data["test_x"][:4]).shape == (4, 10), name


def test_inference_speeds_cover_the_default_cnn_and_ours():
    data = {"test_x": torch.randn(1000, 1, 28, 28)}
    speeds = inference_speeds(data, torch.device("cpu"), build_model("cnn", {"widths": [16, 16, 48], "stem": "stride"}))
    assert set(speeds) == {"default cnn", "ours (fast)"}
    for speed in speeds.values():
        assert speed["throughput_img_s"] > 0 and speed["latency_batch1_ms"] > 0 and speed["batch_size"] == 1000


def test_table_reports_speed_ratios_against_ours():
    def result(seconds, acc):
        return {"runs": [{}] * 5, "seconds_mean": seconds, "accuracy_mean": acc, "accuracy_std": 0.001, "accuracy_min": acc}
    text = table({"seed": result(500.0, 0.99), "public_fastest": result(10.0, 0.989), "ours (fast)": result(4.0, 0.991)})
    assert "125.0x" in text and "2.5x" in text and "1.0x" in text


def test_results_files_are_named_after_the_hardware_kind():
    kind = cpu_kind()
    assert kind.endswith(("-amx", "-avx512bf16", "-nobf16")) and "/" not in kind and " " not in kind
    cpu = {"cpu_kind": kind, "device": "cpu", "date": "2026-11-25"}
    assert results_path(cpu).name == f"{kind}-2026-11-25.json"
    assert results_path({**cpu, "precision_asked": "fp32"}).name == f"{kind}-ours-fp32-2026-11-25.json"
    gpu = {**cpu, "device": "cuda:0", "gpu": "NVIDIA H100 80GB HBM3"}
    assert results_path(gpu).name == "cuda-nvidia-h100-80gb-hbm3-2026-11-25.json"


def test_a_torch_without_get_capabilities_names_the_cpu_kind_from_the_kernels_flags(monkeypatch):
    """A GPU machine's own torch may be older than the pinned one and lack
    torch.cpu.get_capabilities: the kernel's flags must give the same bf16 units."""
    expected = cpu_kind()
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    assert cpu_kind() == expected


COMMIT = re.compile(r"^[0-9a-f]{40}(-dirty)?$")


def git(root, *args, check=True) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=check).stdout.strip()


def test_results_record_the_commit_they_measured(tmp_path):
    if (ROOT / ".git").exists():
        assert git_commit().partition("-")[0] == git(ROOT, "rev-parse", "HEAD")
    assert hardware(torch.device("cpu"))["commit"] == git_commit()
    # A checkout of its own: clean, then dirty, but not for untracked files or results files.
    (tmp_path / RESULTS_DIR).mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / RESULTS_DIR / "old.json").write_text("{}\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "scratch.py").write_text("")
    (tmp_path / RESULTS_DIR / "old.json").write_text("{\"rerun\": true}\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "-dirty"
    # No commit to name: a folder inside a checkout (not its top), or outside any.
    (tmp_path / "inner").mkdir()
    assert git_commit(tmp_path / "inner") is None
    assert git_commit(tmp_path.parent / "nowhere") is None


@pytest.mark.parametrize("path", sorted((ROOT / RESULTS_DIR).glob("*.json")), ids=lambda p: p.name)
def test_every_committed_results_file_names_its_commit(path):
    record = json.loads(path.read_text())
    commit = record.get("hardware", record).get("commit")
    assert commit and COMMIT.match(commit), f"{path.name}: no `commit` (benchmarks/results/README.md says how to find it)"
    if (ROOT / ".git").exists() and git(ROOT, "rev-parse", "--is-shallow-repository") == "false":
        sha = commit.partition("-")[0]
        assert subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", sha, "HEAD"]).returncode == 0, \
            f"{path.name}: {sha} is not in this branch's history"


@pytest.mark.parametrize("name", ["fast", "best"])
def test_presets_leave_precision_to_the_hardware(name):
    assert apply(name)["train"]["cnn"]["precision"] == "auto"


def test_the_process_benchmark_runs_the_real_stage_on_one_and_two_processes(tiny, tmp_path, monkeypatch):
    from benchmarks import train_processes

    monkeypatch.chdir(tiny.path)  # a built project: params.yaml, src/ and data/processed/
    monkeypatch.setattr(train_processes, "RESULTS_DIR", tmp_path / "results")
    report = train_processes.main(["--model", "mlp", "--nproc", "1,2", "--subset", "512", "--epochs", "1"])
    assert [run["nproc"] for run in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert 0 < run["train_time_s"] < run["wall_s"] and 0 <= run["val_acc"] <= 1
    assert not (tmp_path / "results").exists()  # a quick check writes no results file


def test_a_failing_run_of_the_process_benchmark_says_why(tiny, monkeypatch):
    """The stage's output is not shown while it runs: a failure must still say what went wrong
    (once, under load in CI, a two-process run failed with no word of why)."""
    from benchmarks import train_processes

    monkeypatch.chdir(tiny.path)
    with pytest.raises(PipelineError, match=r"train.nproc 0 failed \(exit status 2\): error: .*train\.nproc"):
        train_processes.main(["--model", "mlp", "--nproc", "0", "--subset", "512", "--epochs", "1"])


def test_the_best_preset_benchmark_trains_scores_and_ensembles_every_seed(tiny, tmp_path, monkeypatch):
    from benchmarks import best_preset

    monkeypatch.chdir(tiny.path)  # a built project: data/processed/
    out, partial = tmp_path / "best.json", tmp_path / "best.partial.json"
    out.write_text("a finished run of the same name")
    train_one, done_before = best_preset.train_one, []

    def train_one_watched(cfg, seed, device, data):
        # While a seed trains, the seeds before it are in the partial file; the finished one is untouched.
        done_before.append([r["seed"] for r in json.loads(partial.read_text())["runs"]] if partial.exists() else [])
        assert out.read_text() == "a finished run of the same name"
        return train_one(cfg, seed, device, data)

    monkeypatch.setattr(best_preset, "train_one", train_one_watched)
    best_preset.run("fast", [0, 1], torch.device("cpu"), out=out, epochs=1)
    assert done_before == [[], [0]] and not partial.exists()
    report = json.loads(out.read_text())
    assert report["preset"] == "fast" and report["hardware"]["cpu_kind"] == cpu_kind()
    assert [r["seed"] for r in report["runs"]] == report["ensemble"]["seeds"] == [0, 1]
    for run in report["runs"]:
        assert len(run["curve"]) == 1 and 0 < run["train_seconds"] <= run["wall_seconds"]
        for view in ("test", "test_tta"):
            assert 0.9 < run[view]["accuracy"] == pytest.approx(1 - run[view]["errors"] / 10_000, abs=1e-6)  # one epoch of `fast` on MNIST
    assert report["runs"][0]["test"] != report["runs"][1]["test"]  # two seeds, two models
    assert report["test_mean"] == pytest.approx(sum(r["test"]["accuracy"] for r in report["runs"]) / 2, abs=1e-6)


def test_accuracy_counts_errors_and_scores_an_ensemble_by_its_summed_probabilities():
    from benchmarks.best_preset import accuracy

    labels = torch.tensor([0, 1, 2])
    a = torch.tensor([[0.6, 0.4, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])  # wrong on the second digit
    b = torch.tensor([[0.4, 0.6, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])  # wrong on the first
    assert accuracy(a, labels)["errors"] == accuracy(b, labels)["errors"] == 1
    assert accuracy(a + b, labels) == {"accuracy": 1.0, "errors": 0}


def test_an_unknown_recipe_is_one_clear_line(python_process):
    result = python_process("-m", "benchmarks.time_to_accuracy", "--recipes", "public_fastest,oops", cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith("--recipes: unknown oops; choose from seed, public_fastest, ours")
    assert "Traceback" not in result.stderr


def test_a_longer_schedule_or_other_seeds_of_the_best_preset_is_a_results_file_of_its_own():
    from benchmarks.best_preset import results_path

    gpu = {"cpu_kind": "intel-f6m207-amx", "device": "cuda", "gpu": "NVIDIA H200", "date": "2026-12-04"}
    assert results_path(gpu, "best").name == "cuda-nvidia-h200-best-2026-12-04.json"
    assert results_path(gpu, "best", 60).name == "cuda-nvidia-h200-best-60-epochs-2026-12-04.json"
    assert results_path(gpu, "best", 0, 1).name == "cuda-nvidia-h200-best-1-seeds-2026-12-04.json"


def test_an_unknown_preset_for_the_best_preset_benchmark_is_one_clear_line(python_process):
    result = python_process("-m", "benchmarks.best_preset", "--preset", "nope", cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: presets/nope.yaml: no such preset (known: {', '.join(PRESETS)})"]


def test_a_benchmark_run_of_other_sizes_is_a_results_file_of_its_own():
    import argparse

    from benchmarks.hardware import sized_variant

    parser = argparse.ArgumentParser()
    parser.add_argument("--digits", type=int, default=5000)
    parser.add_argument("--recipes", default="seed,public_fastest,ours")
    assert sized_variant(parser, parser.parse_args([]), ["digits", "recipes"]) == ""
    assert sized_variant(parser, parser.parse_args(["--digits", "200", "--recipes", "ours,seed"]),
                         ["digits", "recipes"]) == "-digits-200-recipes-ours+seed"

