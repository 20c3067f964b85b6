#!/usr/bin/env bash
# The checks only a GPU can make, as one run on a lent CUDA machine (docs/benchmarks.md#on-a-gpu):
#   time_to_accuracy  python -m benchmarks.time_to_accuracy --device cuda --seeds 5
#   best_preset       python -m benchmarks.best_preset --device cuda --seeds 3
#   best_preset_60    the same with 60 epochs (not by default)
#   repro             the whole `dvc repro` with train.device=cuda, each output line timestamped
#
#   benchmarks/device_check.sh pack   # here: what the machine lacks, into .device/ (git ignores it)
#   benchmarks/device_check.sh run [CHECK...]   # there, from the repository root; results under $OUT
#
# On an H200 (2026-12-04) time_to_accuracy took 80 s, best_preset 174 s and repro about 8.5 minutes:
# `run time_to_accuracy best_preset`, then `run repro` as a call of its own.
#
# Such a machine has its own Python and torch, and no network: `pack` puts there the wheels of
# dvc and dvclive (at requirements.lock's versions, for its Python), MNIST's four files and the
# commit as a git bundle, so that results files name the code they measured. Each check has its
# own time limit and a failure in one does not stop the next, so that one call gets all it can.
set -uo pipefail

PACK=.device
PY_TAG=3.12  # the GPU machine's Python (the device library's KINDS.md)
BUDGET_S=${BUDGET_S:-570}  # the whole run; the device's limit for one command is 600 s

pack() {
    rm -rf "$PACK" && mkdir -p "$PACK/whl" "$PACK/sdist"
    grep -qx "/$PACK/" .git/info/exclude 2>/dev/null || echo "/$PACK/" >>.git/info/exclude
    local python=.venv/bin/python platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
        platforms+=(--platform "$p")
    done
    # antlr4's runtime (hydra's, dvc's) is published as source only: a pure-Python wheel built here
    "$python" -m pip wheel -q --no-deps -w "$PACK/sdist" "$(grep -i '^antlr4-python3-runtime==' requirements.lock)"
    "$python" -m pip download -q --only-binary=:all: --python-version "$PY_TAG" --implementation cp "${platforms[@]}" \
        --find-links "$PACK/sdist" -d "$PACK/whl" -c requirements.lock \
        "$(grep -i '^dvc==' requirements.lock)" "$(grep -i '^dvclive==' requirements.lock)" 2>&1 | grep -v "is ignored"
    mv "$PACK"/sdist/*.whl "$PACK/whl/" 2>/dev/null; rmdir "$PACK/sdist"
    tar -czf "$PACK/mnist.tar.gz" -C data/raw/MNIST/raw .
    git bundle create -q "$PACK/head.bundle" HEAD
    du -sh "$PACK"
}

log() { echo "[device_check +$((SECONDS - START))s] $*"; }

# check NAME SECONDS CMD...: one check under its time limit, its output kept in $OUT/NAME.log
check() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET_S - (SECONDS - START) - 20))
    ((limit > left)) && limit=$left
    if ((limit < 30)); then log "$name: skipped, ${left}s left"; return; fi
    log "$name: $* (at most ${limit}s)"
    local begin=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done | tee "$OUT/$name.log"
    log "$name: exit ${PIPESTATUS[0]} after $((SECONDS - begin))s"
}

setup() {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    lscpu | grep -E '^(Model name|CPU\(s\))'
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$PACK"/whl/*.whl
    python -c 'import sys, torch; from importlib.metadata import version; print(sys.version.split()[0],
        "torch", torch.__version__, torch.cuda.get_device_name(), "dvc", version("dvc"), "dvclive", version("dvclive"))'
    mkdir -p data/raw/MNIST/raw && tar -xzf "$PACK/mnist.tar.gz" -C data/raw/MNIST/raw
    # The copy's .git, if it came with one, need not be at the commit of the tree (one came at the
    # session's first commit): make HEAD the bundled commit, leaving the files as they are.
    [ -d .git ] || git init -q
    git config core.fileMode false && git fetch -q "$PACK/head.bundle" HEAD &&
        git update-ref HEAD FETCH_HEAD && git reset -q
    echo "/$PACK/" >>.git/info/exclude
    git status --short | head
    log "commit $(git rev-parse HEAD)"
}

repro_on_cuda() {
    sed -i 's/^  device: auto /  device: cuda /' params.yaml
    grep -q '^  device: cuda ' params.yaml || { echo "params.yaml: train.device not found"; return 2; }
    python -m dvc repro --keep-going && python -m dvc metrics show
    local status=$?
    tar -czf "$OUT/repro-cuda.tar.gz" --exclude='*.png' dvc.lock metrics
    git checkout -q params.yaml dvc.lock metrics  # the later checks measure the committed code, clean
    return $status
}

run() {
    START=$SECONDS
    export OUT=${OUT:?run this on the device machine, where OUT names the folder that comes back}
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1
    # stage commands run `python`: the one beside python3, in its own environment
    PATH="$(dirname "$(command -v python3)"):$PATH"
    setup 2>&1 | tee "$OUT/setup.log"
    local names=("$@")
    ((${#names[@]})) || names=(time_to_accuracy best_preset repro)
    for name in "${names[@]}"; do
        case $name in
            time_to_accuracy) check "$name" 150 python -m benchmarks.time_to_accuracy --device cuda --seeds 5 ;;
            best_preset | best_preset_60)  # the second: 60 epochs, where 30 still climbed (2026-12-04)
                [ -d data/processed ] || python -m src.preprocess
                local epochs=0 limit=300
                [ "$name" = best_preset_60 ] && epochs=60 limit=420
                check "$name" "$limit" python -m benchmarks.best_preset --device cuda --seeds 3 --epochs "$epochs" ;;
            repro) check "$name" 600 bash -c repro_on_cuda ;;
            *) log "$name: no such check (time_to_accuracy, best_preset, best_preset_60, repro)" ;;
        esac
    done
    find benchmarks/results -name 'cuda-*.json' -newer "$OUT/setup.log" -exec cp {} "$OUT/" \;  # this run's
    ls -la "$OUT"
}

export -f repro_on_cuda
case "${1:-}" in
    pack) pack ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 pack | run [time_to_accuracy] [best_preset] [best_preset_60] [repro]" >&2; exit 2 ;;
esac
