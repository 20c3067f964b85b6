"""The train stage on one process of all the cores against several processes (torchrun).

    python -m benchmarks.train_processes [--model cnn] [--nproc 1,2] [--repeats 1]

Runs `python -m src.train <model>` exactly as `dvc repro` does, in a scratch copy of the project
(params.yaml, src/ and data/processed/, so this project's outputs are untouched), once per
`train.nproc` value and repeat, one after another. Reports the training time the stage logs
(`train_time_s`, DVCLive's summary) and the wall time of the whole command (start-up included).
Results are printed and written to benchmarks/results/<cpu kind>-train-nproc-<date>.json.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks.hardware import RESULTS_DIR, hardware
from src.errors import PipelineError
from src.fileio import PROCESSED_DIR, write_json

METHOD = " ".join(__doc__.split("\n\n")[2].split())


def scratch_project(root: Path) -> Path:
    for name in ("params.yaml", "src", PROCESSED_DIR):
        source, target = Path(name), root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    return root


def run_stage(project: Path, model: str, overrides: dict) -> dict:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update({k: v for k, v in overrides.items() if k != "epochs"})
    if "epochs" in overrides:
        params["train"][model]["epochs"] = overrides["epochs"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "src.train", model], cwd=project,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:  # the stage's own one-line error is its last line
        said = done.stderr.strip().splitlines() or ["(nothing on stderr)"]
        raise PipelineError(f"`python -m src.train {model}` with train.nproc {params['train']['nproc']} "
                            f"failed (exit status {done.returncode}): {said[-1]}")
    wall = time.perf_counter() - start
    summary = json.loads((project / "metrics" / model / "train" / "metrics.json").read_text())
    return {"train_time_s": summary["train_time_s"], "wall_s": round(wall, 2), "precision": summary["precision"],
            "val_acc": summary["val"]["acc"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # the stage `train`'s models: its scratch copy has no other models nor the writers' digits that train.reader reads
    parser.add_argument("--model", default="cnn", choices=["mlp", "cnn"])
    parser.add_argument("--nproc", default="1,2", help="comma-separated train.nproc values")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--subset", type=int, default=0, help="train.subset (0: all; small values for a quick check)")
    parser.add_argument("--epochs", type=int, help="override the model's epochs (for a quick check)")
    args = parser.parse_args(argv)
    info = hardware(torch.device("cpu"))
    print(f"{info['cpu']} [{info['cpu_kind']}] ({info['cpu_cores']} cores), torch {info['torch']}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp))
        for _ in range(args.repeats):
            for nproc in (int(n) for n in args.nproc.split(",")):
                overrides = {"nproc": nproc, "subset": args.subset, **({"epochs": args.epochs} if args.epochs else {})}
                run = {"nproc": nproc, **run_stage(project, args.model, overrides)}
                runs.append(run)
                print(f"  train@{args.model} nproc {nproc}: {run['train_time_s']:7.2f} s of training, "
                      f"{run['wall_s']:7.2f} s in all ({run['precision']})", flush=True)
    report = {"hardware": info, "method": METHOD, "model": args.model, "subset": args.subset,
              "epochs": args.epochs, "runs": runs}
    if not args.subset and not args.epochs:  # a quick check is not a result
        out = RESULTS_DIR / f"{info['cpu_kind']}-train-nproc-{info['date']}.json"
        write_json(out, report)
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    from src.cli import run_stage

    run_stage(main)
