"""The committed results are what the committed code and params give, and they meet the targets.

`dvc.lock` and `metrics/` are committed from a real `make repro` (how users compare branches with
`dvc metrics diff`). These tests need no training: they check that the lock records the code and
params as committed (so the metrics are not stale), that the committed metrics files are the ones
the lock records, and that those metrics reach the accuracy targets. Training the default params
for real is `make test-slow` (tests/test_pipeline.py's slow test).
"""
import json
import re
from decimal import ROUND_HALF_UP, Decimal
import subprocess

import pytest
import yaml

from src.fileio import md5_of
from tests.conftest import ROOT

LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
TRACKED = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())


def lookup(params: dict, dotted: str):
    for key in dotted.split("."):
        params = params[key]
    return params


@pytest.mark.parametrize("stage", sorted(LOCK))
def test_the_lock_records_the_committed_code_and_params(stage):
    code = [d for d in LOCK[stage]["deps"] if d["path"] in TRACKED]
    stale = [d["path"] for d in code if md5_of(ROOT / d["path"]) != d["md5"]]
    assert not stale, f"{stage}: dvc.lock predates the committed {stale}: run `make repro` and commit dvc.lock and metrics/"
    for key, value in LOCK[stage].get("params", {}).get("params.yaml", {}).items():
        assert lookup(PARAMS, key) == value, f"{stage}: params.yaml's {key} is not what dvc.lock recorded: run `make repro`"


def test_the_lock_records_the_stages_dvc_yaml_declares():
    """Each stage's command, deps, params and outs as dvc.yaml declares them now: a stage changed
    there without `make repro` would leave the lock (and the metrics) describing another pipeline."""
    from tests.test_stage_declarations import STAGES

    assert sorted(LOCK) == sorted(STAGES)
    for name, stage in STAGES.items():
        lock = LOCK[name]
        assert lock["cmd"] == stage["cmd"], name
        assert sorted(d["path"] for d in lock.get("deps", [])) == sorted(stage.get("deps", [])), name
        assert sorted(lock.get("params", {}).get("params.yaml", {})) == sorted(stage.get("params", [])), name
        declared_outs = sorted(next(iter(o)) if isinstance(o, dict) else o
                               for kind in ("outs", "metrics", "plots") for o in stage.get(kind, []))
        assert sorted(o["path"] for o in lock.get("outs", [])) == declared_outs, name


def test_the_committed_metrics_are_the_ones_the_lock_records():
    outs = {o["path"]: o for stage in LOCK.values() for o in stage.get("outs", [])}
    committed = [path for path in outs if path in TRACKED]
    assert {"metrics/cnn.json", "metrics/mlp.json", "metrics/numbers.json"} <= set(committed)
    for path in committed:
        assert md5_of(ROOT / path) == outs[path]["md5"], f"{path} is not the output dvc.lock records"


def test_the_committed_metrics_reach_the_targets():
    def metrics(name):
        return json.loads((ROOT / "metrics" / name).read_text())

    assert metrics("cnn.json")["test"]["accuracy"] >= 0.995
    assert metrics("mlp.json")["test"]["accuracy"] >= 0.980
    assert metrics("numbers.json")["exact"]["touching"] >= 0.96


@pytest.mark.parametrize("model", ["mlp", "cnn", "reader"])
def test_the_readmes_model_table_quotes_the_committed_metrics(model):
    """The README's results table row of each model: its accuracy, errors and timings as the committed
    metrics/<model>.json and metrics/<model>/speed.json say (a rerun of `make repro` changes them)."""
    import re

    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(f"| `{model}` ("))
    metrics = json.loads((ROOT / "metrics" / f"{model}.json").read_text())
    speed = json.loads((ROOT / "metrics" / model / "speed.json").read_text())
    quoted = [f"{100 * metrics['test']['accuracy']:.2f}%", f"| {metrics['test']['errors']} |",
              f"{speed['train_time_s']:.2f} s, {speed['train_precision']}", f"{speed['throughput_img_s']:,} img/s",
              f"{speed['latency_batch1_ms']:.3f} ms"]
    missing = [text for text in quoted if text not in re.sub(r"\s+", " ", row)]
    assert not missing, f"README.md's `{model}` row does not quote {missing}: copy them from metrics/{model}*"


def percents_in(value) -> set[str]:
    """Every number in a results file, as a percentage written with 0, 1 or 2 decimals (rounded
    half up, as a person writes 1.775% to two)."""
    if isinstance(value, dict):
        return set().union(*map(percents_in, value.values())) if value else set()
    if isinstance(value, float) and 0 <= value <= 1:
        percent = Decimal(repr(value)) * 100
        return {str(percent.quantize(Decimal(1).scaleb(-d), rounding=ROUND_HALF_UP)) for d in (0, 1, 2)}
    return set()


def test_the_readmes_reading_numbers_quote_the_committed_results():
    """The README's sentences on what the line model and the reader read: each percentage is one
    of metrics/numbers.json, metrics/writers.json or the reader benchmark's results file."""
    readme = (ROOT / "README.md").read_text()
    text = readme[readme.index("The line model reads"):readme.index("### Speed on each kind of machine")]
    reader = json.loads((ROOT / "benchmarks/results/reader-reader-onnx.json").read_text())["exact"]
    numbers = reader["4-digit MNIST numbers on paper"]
    unflagged = [(k["n"] * (1 - k["flagged"]), k["unflagged right"]) for k in numbers.values()]
    overall = sum(n * right for n, right in unflagged) / sum(n for n, _ in unflagged)   # "over the three kinds"
    known = (percents_in(json.loads((ROOT / "metrics/numbers.json").read_text()))
             | percents_in(json.loads((ROOT / "metrics/writers.json").read_text())) | percents_in(reader)
             | percents_in({"overall": overall}))
    quoted = re.findall(r"(\d+(?:\.\d+)?)%", text)
    assert len(quoted) >= 20
    assert not [q for q in quoted if q not in known], "README.md quotes numbers no results file holds"
