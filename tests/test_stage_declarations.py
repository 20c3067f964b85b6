"""dvc.yaml declares exactly what each stage uses, so that `dvc repro` reruns a stage when, and
only when, something it depends on changed. Checked against the code, not kept by memory:
- code: the project files a stage's command imports, followed transitively (ast), equal its
  `.py` deps;
- params: the keys a stage reads, recorded while `dvc repro` really runs it in the tiny build
  (tests/params_recorder), are all declared, and every declared param is read;
- data: the files it opens there, but its code and params.yaml, are its deps or its outputs, and
  every dep is read;
- a stage imports the library, never another stage: an edit of one stage's module reruns that
  stage alone (and what reads its outputs), not the stages that borrowed from it.
"""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import PARAMS_READ_LOG, ROOT
from tests.imports import imported_files, module_file
from tests.params_recorder.sitecustomize import Recording

COMMAND = re.compile(r"^python3? -m ([\w.]+)(.*)$")


def expanded_stages(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, dict]:
    """dvc.yaml's stages, each `matrix` stage expanded to its `name@value` stages (one axis, as
    here), `${item.<axis>}` substituted."""
    stages = {}
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        if "matrix" not in stage:
            stages[name] = stage
            continue
        (axis, values), = stage["matrix"].items()
        for value in values:
            text = yaml.safe_dump({k: v for k, v in stage.items() if k != "matrix"})
            stages[f"{name}@{value}"] = yaml.safe_load(text.replace(f"${{item.{axis}}}", str(value)))
    return stages


STAGES = expanded_stages()


def command(stage: dict) -> tuple[str, list[str]]:
    match = COMMAND.match(stage["cmd"].strip())
    assert match, f"expected `python -m <module> [args]`, got {stage['cmd']!r}"
    return match.group(1), match.group(2).split()


def relative(paths) -> set[str]:
    return {str(p.relative_to(ROOT)) for p in paths}


def empty_init(path: Path) -> bool:
    """An __init__.py with no code: nothing, or a docstring alone (an edit of it changes no result)."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text()).body
    return not body or (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant))


@pytest.mark.parametrize("name", STAGES)
def test_code_deps_are_exactly_what_the_command_imports(name):
    stage = STAGES[name]
    module, _ = command(stage)
    entry = module_file(module)
    assert entry, f"{name}: {module} is not a project module"
    imported = relative(p for p in imported_files(entry) if not empty_init(p))
    declared = {d for d in stage.get("deps", []) if d.endswith(".py")}
    missing, extra = sorted(imported - declared), sorted(declared - imported)
    assert not missing and not extra, (f"{name} in dvc.yaml: code deps missing {missing} (edits to them do not "
                                       f"rerun it), not imported {extra} (edits to them rerun it for nothing)")


STAGE_MODULES = sorted({command(stage)[0] for stage in STAGES.values()})


@pytest.mark.parametrize("module", STAGE_MODULES)
def test_a_stage_imports_the_library_never_another_stage(module):
    entry = module_file(module)
    others = {module_file(m) for m in STAGE_MODULES} - {entry}
    borrowed = sorted(relative(imported_files(entry) & others))
    assert not borrowed, f"{module} imports the stages {borrowed}: move what they share into a library module"


def test_the_library_never_imports_the_reader():
    """digit_reader imports src's library; a stage may score the reader (evaluate_writers), but no
    library module of src/ imports digit_reader, so that the imports run one way."""
    stages = {module_file(m) for m in STAGE_MODULES}
    library = [p for p in (ROOT / "src").glob("*.py") if p not in stages]
    reader = ROOT / "digit_reader"
    wrong = {str(p.relative_to(ROOT)): sorted(relative(f for f in imported_files(p) if reader in f.parents))
             for p in library}
    assert not {p: found for p, found in wrong.items() if found}, wrong


def test_the_stage_packages_init_files_are_empty():
    """The deps leave out empty __init__.py files; one that gains code must become a dep."""
    for path in {p for stage in STAGES.values() for p in imported_files(module_file(command(stage)[0]))}:
        if path.name == "__init__.py":
            assert empty_init(path), f"{path} has code: make it a dep of the stages that import it"


def test_the_import_walk_finds_lazy_and_package_imports(tmp_path):
    """The checker itself, on a package of its own: a module reached only through an import inside
    a function, one through `from pkg import module`, one through a package's __init__; and an
    import it cannot follow fails."""
    package = tmp_path / "pkg"
    package.mkdir()
    files = {"__init__.py": "from pkg import base\n", "base.py": "", "stage.py": "import pkg.used\n\n\ndef main():\n    from pkg import lazy\n",
             "used.py": "", "lazy.py": "from pkg.deeper import x\n", "deeper.py": "x = 1\n", "unused.py": ""}
    for name, text in files.items():
        (package / name).write_text(text)
    found = {p.name for p in imported_files(package / "stage.py", root=tmp_path)}
    assert found == {"stage.py", "__init__.py", "base.py", "used.py", "lazy.py", "deeper.py"}
    for text in ("from . import used\n", "import importlib\nimportlib.import_module('pkg.used')\n", "__import__('pkg.used')\n"):
        (package / "stage.py").write_text(text)
        with pytest.raises(AssertionError, match="relative import|computed name"):
            imported_files(package / "stage.py", root=tmp_path)


def covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer + ".")


def test_a_recording_records_the_values_read_not_the_mappings_passed_along():
    reads: set[str] = set()
    params = Recording({"train": {"seed": 0, "cnn": {"lr": 0.1, "net": {"widths": [4]}}}, "data": {"seed": 1}}, "", reads)
    train = params["train"]
    cnn = train["cnn"]
    assert reads == set()
    assert cnn["lr"] == 0.1 and params.get("data")["seed"] == 1 and params.get("missing") is None
    dict(cnn["net"].items())
    assert reads == {"train.cnn.lr", "data.seed", "train.cnn.net"}


def test_params_read_are_exactly_the_declared_params(tiny_built):
    """The keys each stage read while the tiny build's `dvc repro` ran it (tests/params_recorder)."""
    project, _ = tiny_built
    reads: dict[str, set[str]] = {name: set() for name in STAGES}
    for line in (project.path.parent / PARAMS_READ_LOG).read_text().splitlines():
        record = json.loads(line)
        reads[record["stage"]] |= set(record["reads"])
    assert reads["train@cnn"] and reads["train_numbers"], "the recorder saw no reads: is tests/params_recorder on PYTHONPATH?"
    wrong = {}
    for name, stage in STAGES.items():
        declared = [str(p) for p in stage.get("params", [])]
        undeclared = sorted(r for r in reads[name] if not any(covers(d, r) for d in declared))
        unread = sorted(d for d in declared if not any(covers(d, r) or covers(r, d) for r in reads[name]))
        if undeclared or unread:
            wrong[name] = f"reads undeclared params {undeclared} (changing them does not rerun it); declares unread params {unread}"
    assert not wrong, f"dvc.yaml: {wrong}"


# What a stage may read besides its deps: params.yaml (its params are checked above), and the
# repository's own files, which DVCLive reads to find the repository it logs into.
REPOSITORY_FILES = {"params.yaml", ".gitignore", ".dvcignore"}


def declared_paths(stage: dict, *kinds: str) -> list[str]:
    """The paths a stage lists under `kinds` (deps, outs, metrics, plots), options and comments dropped."""
    return [entry if isinstance(entry, str) else next(iter(entry)) for kind in kinds for entry in stage.get(kind, [])]


def within(path: str, declared: str) -> bool:
    return path == declared or path.startswith(declared.rstrip("/") + "/")


def test_files_a_stage_reads_are_exactly_its_data_deps(tiny_built):
    """The files each stage opened while the tiny build's `dvc repro` ran it (tests/params_recorder),
    but its code and params.yaml (checked above), are deps of it, or outputs it reads back; and
    every file or folder it declares is read."""
    project, _ = tiny_built
    opened: dict[str, set[str]] = {name: set() for name in STAGES}
    for line in (project.path.parent / PARAMS_READ_LOG).read_text().splitlines():
        record = json.loads(line)
        opened[record["stage"]] |= {p for p in record.get("opened", []) if not p.endswith((".py", ".pyc"))
                                    and p not in REPOSITORY_FILES and not p.startswith((".dvc/", ".git/"))}
    assert opened["train@cnn"], "the recorder saw no files opened: is tests/params_recorder on PYTHONPATH?"
    wrong = {}
    for name, stage in STAGES.items():
        deps = [d for d in declared_paths(stage, "deps") if not d.endswith(".py")]
        outs = declared_paths(stage, "outs", "metrics", "plots")
        undeclared = sorted(p for p in opened[name] if not any(within(p, d) for d in deps + outs))
        unread = sorted(d for d in deps if not any(within(p, d) for p in opened[name]))
        if undeclared or unread:
            wrong[name] = f"reads undeclared files {undeclared} (changing them does not rerun it); declares unread deps {unread}"
    assert not wrong, f"dvc.yaml: {wrong}"


def test_every_stage_without_arguments_refuses_them():
    """A stage whose command takes no arguments is entered through run_stage_command, which
    refuses any (run by hand with `--help`, such a stage would otherwise train and overwrite its
    outputs outside DVC)."""
    for name, stage in STAGES.items():
        module, args = command(stage)
        if not args:
            tree = ast.parse(module_file(module).read_text())
            called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
            assert "run_stage_command" in called and "run_stage" not in called, name


def test_a_stage_run_by_hand_with_an_argument_refuses_it_and_runs_nothing(python_process):
    helped = python_process("-m", "src.train_numbers", "--help", cwd=ROOT, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("Stage `train_numbers`: train the line model")
    refused = python_process("-m", "src.train_numbers", "--steps", "10", cwd=ROOT, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == ["error: python -m src.train_numbers takes no arguments, got --steps 10 "
                                           "(its settings are in params.yaml; --help says what it does)"]
