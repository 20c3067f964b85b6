import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

# Under pytest-xdist (`make test`: three workers on two cores) each worker, and every process it
# starts, computes on one thread: the workers' thread pools on two cores would contend. Set before
# torch is imported here.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the stages resolve params.yaml, data/ and models/ from the project root

from src.checksums import CANONICAL, is_valid  # noqa: E402
from src.download import fetch  # noqa: E402
from src.fileio import RAW_DIR, md5_of  # noqa: E402
from tests.imports import code_of  # noqa: E402


TIER_OF_FIXTURE = {"tiny": "e2e", "tiny_built": "e2e", "browser": "browser", "live_server": "server",
                   "python_process": "process", "two_ranks": "process"}
SLOW_TIERS_FIRST = ("e2e", "browser", "server", "process", "bulk")  # the order of the tests, by the tiers they are in


def pytest_collection_modifyitems(items):
    """Marks each test with the tiers of the fixtures it uses (see pytest.ini), then orders them
    for `make test`'s workers (below)."""
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in TIER_OF_FIXTURE:
                item.add_marker(TIER_OF_FIXTURE[fixture])
    items[:] = in_equal_shares(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def in_equal_shares(items: list, workers: int) -> list:
    """`items` as `workers` consecutive shares, each with its part of every tier, the slow tiers
    first. `make test`'s scheduler (pytest-xdist's worksteal) gives each worker one consecutive
    share, and a worker that runs out takes tests from the back of another's queue: so the
    seconds-long tests start early everywhere, and the last tests to run are quick ones, not one
    worker's queue of pipelines while the others idle."""
    def rank(item) -> int:
        return next((i for i, tier in enumerate(SLOW_TIERS_FIRST) if item.get_closest_marker(tier)), len(SLOW_TIERS_FIRST))

    ranked = sorted(items, key=rank)
    # the smaller shares first, as worksteal cuts them (n // workers, then what is left over the rest)
    return [item for share in reversed(range(workers)) for item in ranked[share::workers]]


@pytest.fixture(autouse=True)
def python_starts_only_in_a_tier_that_says_so(request, monkeypatch):
    """Outside the tiers that start processes, starting Python fails the test: so `make test-fast`
    stays free of interpreter start-ups (seconds each), and a new test that needs one says so
    by using `python_process`."""
    if any(request.node.get_closest_marker(tier) for tier in {*TIER_OF_FIXTURE.values(), "slow"}):
        return
    start = subprocess.Popen.__init__

    def guarded(self, args, *rest, **options):
        if starts_python(args):
            raise AssertionError("this test starts Python: use the python_process fixture (the `process` tier)")
        start(self, args, *rest, **options)
    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


def starts_python(args) -> bool:
    """Whether a Popen's `args` start a Python interpreter: this one, any `python*` by name, or a
    shell command line that runs one."""
    if isinstance(args, (list, tuple)):
        program = str(args[0])
        return program == sys.executable or Path(program).name.startswith("python")
    return re.search(r"(^|[\s/;&|])python[\d.]*(\s|$)", str(args)) is not None


@pytest.fixture
def python_process():
    """Runs `python ARGS...` in a process of its own, as a user runs a command, and returns the
    finished process with its text output: for what only a fresh interpreter shows (an exit
    code, all of stderr, which modules an entry point imports)."""
    def run(*args, **options) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, **options)
    return run


@pytest.fixture(scope="session")
def raw_mnist(request) -> Path:
    """A folder with the four verified MNIST files: the project's own if `dvc repro` made them,
    else fetched once into pytest's cache (kept between runs, outside the project's outputs)."""
    if all(is_valid(RAW_DIR / name, name) for name in CANONICAL):
        return ROOT / RAW_DIR
    from filelock import FileLock

    cached = Path(request.config.cache.mkdir("mnist")) / "MNIST" / "raw"  # torchvision's layout, as RAW_DIR
    with FileLock(f"{cached}.lock"):  # one worker downloads, the others wait
        fetch(cached)
    return cached


def copy_raw(raw_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in CANONICAL:
        shutil.copyfile(raw_dir / name, target / name)


# --- A toy training problem, for the training and distributed tests ---

def toy_problem(n=512):
    """Digits-shaped inputs whose class is written as a bright row: learnable in a few steps."""
    import torch

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 1, 28, 28, generator=g) * 0.1
    x[torch.arange(n), 0, 2 * y + 4, 4:24] = 3.0
    return x, y



# --- End-to-end projects: a copy of this project in a temporary git repository ---

PROJECT_FILES = ["dvc.yaml", "params.yaml", "src", "digit_reader", "tools", "presets", ".dvc/config", ".dvcignore", ".gitignore"]
STAGES = ["download", "preprocess", "train@mlp", "train@cnn", "evaluate@mlp", "evaluate@cnn", "export@mlp", "export@cnn",
          "writer_digits", "train_reader", "evaluate@reader", "export@reader", "writer_lines", "train_numbers",
          "evaluate_numbers", "export_numbers", "evaluate_writers"]
TINY = {
    "data": {"val_size": 500},
    "train": {"subset": 2000,
              "mlp": {"epochs": 1, "net": {"hidden": [32], "dropout": 0.1}},
              "cnn": {"epochs": 1, "net": {"widths": [4, 8, 8], "dropout": 0.0, "stem": "stride"},
                      "rotate": 5, "scale": 0.05},
              "reader": {"epochs": 1, "net": {"widths": [4, 8, 8], "dropout": 0.0, "stem": "stride"}}},
    "evaluate": {"gallery_size": 6, "tta": True},
    "numbers": {"net": {"widths": [4, 8, 8], "hidden": 8, "sequence": "conv"},
                "train": {"steps": 6, "batch_size": 8, "eval_every": 3, "val_numbers": 24, "calibration_numbers": 40},
                "evaluate": {"per_kind": 8, "per_length": 2, "gallery_size": 4}},
    "writers": {"writers": 5, "single": 20, "per_set": 3, "gallery_size": 4},
    "writer_lines": {"count": 24},
    "writer_digits": {"count": 40, "pairs": 10},
}


def merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value) if isinstance(value, dict) and key != "net" else value
    return merged


class Project:
    def __init__(self, path: Path):
        self.path = path
        venv_bin = str(Path(sys.executable).parent)  # stage commands call `python`: ours
        self.env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"],
                    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}

    def run(self, *args, check=True):
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args, check=True):
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def repro(self, *args, check=True):
        return self.dvc("repro", *args, check=check)

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, params: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def read_json(self, relative: str) -> dict:
        return json.loads((self.path / relative).read_text())

    def md5(self, relative: str) -> str:
        return md5_of(self.path / relative)


def ran(result) -> list[str]:
    """The stages `dvc repro` ran, from its output."""
    return [s for s in STAGES if f"Running stage '{s}'" in result.stdout]


def would_run(project: "Project") -> list[str]:
    """The stages `dvc repro` would run now, found without running any: a dry run in which the stages
    downstream of a changed one count as changed too, as a real run finds them once the changed
    stage has rewritten its outputs. For the tests that ask only which stages a change reruns."""
    return ran(project.repro("--dry", "--force-downstream"))


def make_project(tmp_path: Path, raw_mnist: Path, params_override: dict | None) -> Project:
    project = Project(tmp_path / "project")
    for name in PROJECT_FILES:
        source, target = ROOT / name, project.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
    if params_override:
        project.set_params(merge(project.params(), params_override))
    project.run("git", "init", "-q", "-b", "main")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "project")
    # As after `dvc pull`: present, untracked by git, and verified by the download stage, not trusted.
    copy_raw(raw_mnist, project.path / "data/raw/MNIST/raw")
    return project


PARAMS_READ_LOG = "params-read.jsonl"  # beside the tiny build: which params each of its stages read


def shared_folder(tmp_path_factory) -> Path:
    """The session's temporary folder that every pytest-xdist worker sees: the parent of the
    workers' own (`make test` runs three), or the session's own folder without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def built_once(folder: Path):
    """Yields whether `folder` must still be built, holding a lock until the block ends: the first
    worker to get here builds (and the block marks `folder` built); the others wait, then reuse it."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        done = folder / ".built"
        if done.exists():
            yield False
            return
        shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
        folder.mkdir()
        yield True
        done.touch()


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory, raw_mnist):
    """The tiny project after its first `dvc repro` (and that run's result), built once for every
    worker; tests work on copies of it and never change it. Its stages record the params they read
    (tests/params_recorder) into PARAMS_READ_LOG beside it."""
    folder = shared_folder(tmp_path_factory) / "tiny"
    with built_once(folder) as building:
        if building:
            project = make_project(folder, raw_mnist, TINY)
            recorded = Project(project.path)
            recorded.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests" / "params_recorder"),
                                                                       os.environ.get("PYTHONPATH")]))
            recorded.env["PARAMS_READ_LOG"] = str(folder / PARAMS_READ_LOG)
            result = recorded.repro()
            (folder / "repro.json").write_text(json.dumps({"args": result.args, "stdout": result.stdout,
                                                           "stderr": result.stderr}))
    first = json.loads((folder / "repro.json").read_text())
    return Project(folder / "project"), subprocess.CompletedProcess(first["args"], 0, first["stdout"], first["stderr"])


# Which worker makes which of the session's builds before its first test, so that none waits on
# another's lock (`make test` runs three workers, gw0 to gw2).
FIRST_BUILDS = {"gw0": ("tiny_built", "team"), "gw1": ("reader_project",), "gw2": ("two_ranks",)}


@pytest.fixture(scope="session", autouse=True)
def builds_first(request):
    """Under pytest-xdist, this worker's share of FIRST_BUILDS, of those the selected tests use."""
    used = {name for item in request.session.items for name in item.fixturenames}
    for name in FIRST_BUILDS.get(os.environ.get("PYTEST_XDIST_WORKER"), ()):
        if name in used:
            request.getfixturevalue(name)


@pytest.fixture
def tiny(tiny_built, tmp_path) -> Project:
    built, _ = tiny_built
    copy = Project(tmp_path / "project")
    cache = str(built.path / ".dvc" / "cache") + os.sep

    def link_cache_copy_rest(source: str, target: str) -> None:
        # DVC never rewrites a file of its cache in place (it writes a new one and renames it), so the
        # copies share the build's; the workspace's files are copied, since tests change them.
        if source.startswith(cache):
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(built.path, copy.path, symlinks=True, copy_function=link_cache_copy_rest)
    return copy


# --- The team of tests/test_team.py: machine A (a copy of the tiny build), its DVC remote and a bare git origin ---

MLP_CHANGE = {"epochs": 2, "lr": 0.1}  # an mlp-only change A makes; never the tiny build's values


def git(project: Project, *args):
    return project.run("git", *args)


def commit_all(project: Project, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)


def set_mlp(project: Project, values: dict) -> None:
    params = project.params()
    params["train"]["mlp"].update(values)
    project.set_params(params)


def back_to_head(project: Project) -> None:
    """Workspace, outputs included, as the last commit has them."""
    git(project, "reset", "-q", "--hard")
    project.dvc("checkout", "--force")


@pytest.fixture(scope="session")
def team(tiny_built, tmp_path_factory):
    """A: the tiny build with a default local remote, committed and pushed to a bare `origin`;
    it then changed train.mlp.* and ran `dvc repro` (the result kept in `changed`), went back to
    main, ran the same change as the experiment `mlp-e2` (its output in `exp_run`), and pushed
    everything: the cache with its run cache to the remote, the experiment to `origin`. Built once
    for every worker; of A, the tests only read, or add tags."""
    root = shared_folder(tmp_path_factory) / "team"
    a, origin, remote = Project(root / "a"), root / "origin.git", root / "remote"
    with built_once(root) as building:
        if building:
            record = build_team(tiny_built[0], a, origin, remote)
            (root / "team.json").write_text(json.dumps(record))
    return {"a": a, "origin": origin, "remote": remote, **json.loads((root / "team.json").read_text())}


def build_team(built: Project, a: Project, origin, remote) -> dict:
    shutil.copytree(built.path, a.path, symlinks=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    a.dvc("remote", "add", "-d", "storage", str(remote))
    commit_all(a, "tiny build, with its remote")
    git(a, "remote", "add", "origin", str(origin))
    git(a, "push", "-q", "origin", "main")
    main = {m: a.md5(f"models/{m}.pth") for m in ("mlp", "cnn")}

    set_mlp(a, MLP_CHANGE)
    changed_run = a.repro()
    changed = {"ran": ran(changed_run), "md5": a.md5("models/mlp.pth"), "metrics": a.read_json("metrics/mlp.json"),
               "diff": json.loads(a.dvc("metrics", "diff", "main", "--json").stdout),
               "diff_text": a.dvc("metrics", "diff", "main").stdout,
               "plots": json.loads(a.dvc("plots", "diff", "main", "--json").stdout)}
    a.dvc("push", "--run-cache")  # the run's outputs (what the workspace holds) and its run-cache entries
    back_to_head(a)

    exp_run = a.dvc("exp", "run", "-n", "mlp-e2", *[arg for k, v in MLP_CHANGE.items() for arg in ("-S", f"train.mlp.{k}={v}")])
    exp_show = json.loads(a.dvc("exp", "show", "--json").stdout)
    back_to_head(a)
    a.dvc("push", "--run-cache")
    a.dvc("exp", "push", "origin", "mlp-e2")
    return {"main": main, "changed": changed, "exp_run": exp_run.stdout, "exp_show": exp_show}


# --- Two ranks of torchrun, for tests/test_distributed.py ---

@pytest.fixture(scope="session")
def two_ranks(tmp_path_factory):
    """What each of two ranks trained and saw, from one torchrun launch of tests/test_distributed.py's
    `worker`."""
    import torch

    from src import distributed

    out = shared_folder(tmp_path_factory) / "ranks"
    with built_once(out) as launching:
        if launching:
            distributed.launch(2, "-m", "tests.test_distributed", str(out))
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


# --- A quickly trained model laid out as a project: for the reader, the CLI, the API and the page ---

QUICK_MODELS = {  # as presets/fast.yaml, in fp32 (exact on any CPU): ~99.0% in seconds
    "cnn": {"net": {"widths": [16, 16, 48], "dropout": 0.0, "stem": "stride"}, "epochs": 1, "batch_size": 192,
            "lr": 0.3, "shift": 0, "precision": "fp32"},
    "mlp": {"net": {"hidden": [64], "dropout": 0.0}, "epochs": 1, "batch_size": 128, "precision": "fp32"},
    # the reader's classifier: the quick cnn trained on for an epoch with QUICK_WRITER_DIGITS (and their
    # pairs, as several digits) beside the first QUICK_READER_MNIST of MNIST's training digits
    "reader": {"net": {"widths": [16, 16, 48], "dropout": 0.0, "stem": "stride"}, "epochs": 1, "batch_size": 192,
               "lr": 0.02, "shift": 0, "precision": "fp32"},
}
QUICK_MLP_IMAGES = 10_000  # the MLP is only there to be chosen by --model: it need not be good
QUICK_WRITER_DIGITS = {"count": 1500, "pairs": 3000}
QUICK_READER_MNIST = 20_000


@pytest.fixture(scope="session")
def mnist_test_digits(raw_mnist):
    """MNIST's 10,000 test digits (uint8 N x 28 x 28) and labels, as numpy arrays."""
    from src.preprocess import read_raw

    images, labels = read_raw("t10k", raw_mnist)
    return images.numpy(), labels.numpy()


@pytest.fixture(scope="session")
def reader_project(request, tmp_path_factory, raw_mnist) -> Path:
    """A project directory as `make repro` leaves it for digit_reader.reader: params.yaml, models/cnn.pth
    and models/mlp.pth (trained for one epoch on all 60,000 training digits by the pipeline's
    own fit()), models/cnn.onnx and models/mlp.onnx (exported and checked by the export stage's
    code), data/processed/stats.json. The trained files are kept in pytest's cache, under a
    hash of the code and settings that made them, so they are trained again only when those change."""
    import torch

    root = tmp_path_factory.mktemp("reader")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] = merge(params["train"], QUICK_MODELS)
    params["writer_digits"] = merge(params["writer_digits"], QUICK_WRITER_DIGITS)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    made_by = code_of("src.data", "src.export", "src.models", "src.preprocess", "src.training", "src.writer_digits")
    used = {key: params[key] for key in ("train", "writer_digits")}
    key = hashlib.md5(b"".join(p.read_bytes() for p in made_by) + json.dumps(used, sort_keys=True).encode()
                      + torch.__version__.encode() + str((QUICK_MLP_IMAGES, QUICK_READER_MNIST)).encode()).hexdigest()
    cached = Path(request.config.cache.mkdir("quick")) / f"reader-project-{key}"
    with built_once(cached) as building:
        if building:
            train_quick_models(cached, params, raw_mnist)
    shutil.copytree(cached, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".built"))
    add_quick_numbers_model(request, root, raw_mnist)
    return root


QUICK_NUMBERS = {"images": {"writer_lines": 0.1},
                 "net": {"widths": [16, 32, 64], "hidden": 128, "sequence": "conv"},
                 "train": {"steps": 1000, "val_numbers": 1000, "calibration_numbers": 1000, "precision": "fp32"}}
# Lines by 1,000 training writers, a tenth of each batch (the pipeline: 8,000, a quarter): with
# them the quick line model reads touching numbers in shapes MNIST lacks (tests/test_numbers_page.py),
# where without them it read none of three; 300 more steps keep what it reads of MNIST.
QUICK_WRITER_LINES = {"count": 1000}
QUICK_NUMBERS_VAL = 5000  # the last training images: the quick line model's validation digits


def add_quick_numbers_model(request, root: Path, raw_mnist: Path) -> None:
    """models/numbers.pth and models/numbers.onnx, the line model, trained for QUICK_NUMBERS's
    steps by the pipeline's own fit_line_model, calibrated and exported, into `root` (whose
    params.yaml gets its `numbers` section); cached in pytest's cache like the digit models,
    under its own hash."""
    import torch

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["numbers"] = merge(params["numbers"], QUICK_NUMBERS)
    params["writer_lines"] = merge(params["writer_lines"], QUICK_WRITER_LINES)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    made_by = code_of("src.export_numbers", "src.number_calibration", "src.number_images", "src.number_model",
                      "src.preprocess", "src.train_numbers", "src.weights", "src.writer_lines")
    used = {key: params[key] for key in ("numbers", "writer_lines")}
    key = hashlib.md5(b"".join(p.read_bytes() for p in made_by) + json.dumps(used, sort_keys=True).encode()
                      + torch.__version__.encode()).hexdigest()
    cached = Path(request.config.cache.mkdir("quick")) / f"numbers-model-{key}"
    with built_once(cached) as building:
        if building:
            stats = json.loads((root / "data" / "processed" / "stats.json").read_text())  # the reader's normalisation
            train_quick_numbers_model(cached, params, raw_mnist, stats["mean"], stats["std"])
    for name in ("numbers.pth", "numbers.onnx"):
        shutil.copyfile(cached / name, root / "models" / name)


def train_quick_numbers_model(folder: Path, params: dict, raw_mnist: Path, mean: float, std: float) -> None:
    """numbers.pth and numbers.onnx (exported and checked by the export stage's code) into `folder`."""
    import torch

    from src.export_numbers import export_line_model
    from src.number_calibration import calibrate
    from src.number_images import KINDS, LinePool, fixed_numbers
    from src.number_model import build_line_model
    from src.preprocess import read_raw
    from src.train_numbers import calibration_readings, fit_line_model, validation_numbers
    from src.weights import save_weights
    from src.writer_lines import packed, settings, writer_lines

    cfg, images_cfg = params["numbers"]["train"], params["numbers"]["images"]
    pool = LinePool(**packed([line for line in writer_lines(settings(params), 1) if line is not None]))
    images, labels = read_raw("train", raw_mnist)
    train_x, train_y = images[:-QUICK_NUMBERS_VAL], labels[:-QUICK_NUMBERS_VAL]
    val = validation_numbers(images[-QUICK_NUMBERS_VAL:], labels[-QUICK_NUMBERS_VAL:], cfg["val_numbers"],
                             images_cfg["lengths"])
    torch.manual_seed(cfg["seed"])
    model = build_line_model(params["numbers"]["net"]).to(memory_format=torch.channels_last)
    fit_line_model(model, train_x, train_y, val, cfg, images_cfg, mean, std, torch.device("cpu"), writer_lines=pool)
    calibrate(model, calibration_readings(model, images[-QUICK_NUMBERS_VAL:], labels[-QUICK_NUMBERS_VAL:],
                                          cfg["calibration_numbers"], images_cfg["lengths"], mean, std),
              cfg["unflagged_accuracy"])
    save_weights(model, folder / "numbers.pth")
    test_images, test_labels = read_raw("t10k", raw_mnist)
    check = fixed_numbers(test_images, test_labels, [4] * 60, list(KINDS) * 20, seed=0)
    (folder / "numbers.onnx").write_bytes(export_line_model(model, mean, std, check, folder / "numbers.onnx")[0])


def train_quick_models(root: Path, params: dict, raw_mnist: Path) -> None:
    import torch

    from src.data import normalize
    from src.export import export_classifier
    from src.models import model_of, start_from
    from src.preprocess import pixel_stats, read_raw
    from src.training import fit
    from src.weights import save_weights
    from src.writer_digits import writer_digits

    import numpy as np

    images, labels = read_raw("train", raw_mnist)
    mean, std = pixel_stats(images)
    x = normalize(images, mean, std)
    test_images, test_labels = read_raw("t10k", raw_mnist)
    digits = [d for d in writer_digits(params["writer_digits"], 1) if d is not None]
    writers_x = normalize(torch.from_numpy(np.stack([image for image, _ in digits])), mean, std)
    writers_y = torch.tensor([label for _, label in digits])
    for name in QUICK_MODELS:
        cfg = params["train"][name]
        torch.manual_seed(0)
        model = model_of(cfg)
        n = {"mlp": QUICK_MLP_IMAGES, "reader": QUICK_READER_MNIST}.get(name, len(labels))
        train_x, train_y = x[:n], labels[:n]
        if cfg.get("init"):   # as src/train.py: from that model's weights, with the writers' digits and pairs
            start_from(model, root / "models" / f"{cfg['init']}.pth")
            train_x, train_y = torch.cat([train_x, writers_x]), torch.cat([train_y, writers_y])
        fit(model, train_x, train_y, cfg, seed=0, fill=-mean / std, progress=False)
        save_weights(model, root / "models" / f"{name}.pth")
        onnx = root / "models" / f"{name}.onnx"
        onnx.write_bytes(export_classifier(model, name, mean, std, test_images, test_labels, onnx)[0])
    (root / "data" / "processed").mkdir(parents=True, exist_ok=True)
    (root / "data" / "processed" / "stats.json").write_text(json.dumps({"mean": mean, "std": std}))


def on_paper(digits, scale: float = 4.0, gaps=None, margin: int = 12, shifts=None):
    """MNIST digits (uint8 28 x 28 each) written as a user would: left to right with `gaps`
    pixels between their ink (default 6), each `shifts` pixels down, dark on white paper,
    enlarged `scale` times: a PIL image."""
    import numpy as np

    from tools.user_images import number_on_paper

    tiles = [d[:, np.flatnonzero(d.max(0))[0]:np.flatnonzero(d.max(0))[-1] + 1] for d in digits]
    gaps = [6] * (len(tiles) - 1) if gaps is None else list(gaps)
    shifts = [0] * len(tiles) if shifts is None else list(shifts)
    line = np.zeros((28 + max(shifts), sum(t.shape[1] for t in tiles) + sum(gaps)), np.uint8)
    x = 0
    for tile, gap, dy in zip(tiles, gaps + [0], shifts):
        region = line[dy:dy + 28, x:x + tile.shape[1]]
        np.maximum(region, tile, out=region)
        x += tile.shape[1] + gap
    return number_on_paper(line, scale, margin)


def encode(image, format: str = "PNG", **options) -> bytes:
    """A PIL image as the bytes of an image file."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny compressed row: what a
    decompression bomb or a hostile header looks like."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def paper():
    return on_paper


@pytest.fixture(scope="session")
def live_server(reader_project):
    """A real server, `python -m digit_reader.serve`, on a free port of 127.0.0.1, serving the quick model:
    yields its base URL."""
    with serving_process(reader_project) as url:
        yield url


@contextmanager
def serving_process(root: Path, *args: str, uvicorn_factory: bool = False):
    """`python -m digit_reader.serve --root root *args` on a free port of 127.0.0.1 (with
    `uvicorn_factory`, `uvicorn --factory digit_reader.api:app_from_environment *args` instead),
    until the block ends."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = (["uvicorn", "--factory", "digit_reader.api:app_from_environment"] if uvicorn_factory
               else ["digit_reader.serve", "--root", str(root)])
    server = subprocess.Popen([sys.executable, "-m", *command, "--port", str(port), *args], cwd=ROOT,
                              env={**os.environ, "DIGITS_ROOT": str(root)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the server did not start:\n{server.stdout.read() if server.poll() is not None else ''}")
                time.sleep(0.2)
        yield url
    finally:
        from benchmarks.serve_load import stopped_or_killed

        # a server that does not stop fails the test and is not left running
        assert stopped_or_killed(server, 20), "the server did not stop within 20 s of SIGTERM"
    if not uvicorn_factory:  # uvicorn's own command dies by the signal; ours stops cleanly
        assert server.returncode == 0, f"the server stopped with exit status {server.returncode}"


# --- A real browser: Debian's Chromium, driven by Playwright (whose own browser download cannot work here) ---

CHROMIUM = "/usr/bin/chromium"  # apt-get install chromium; .ci/run installs it when missing
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and later tests call asyncio.run.
@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
