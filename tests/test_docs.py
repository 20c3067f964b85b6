"""The documentation holds together: every relative link and image in the README, docs/*.md and
benchmarks/NOTES.md points at a file of the repository (and at a heading of it, for `#anchors`);
every project path quoted in code exists; the README stays an entrance (at most README_LIMIT bytes);
and every command the README and docs/ tell people to run names a module, attribute, make target
or params key that exists.
"""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "NOTES.md"]
HOW_TO_PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # NOTES.md is history, not instructions
README_LIMIT = 12_000
PROJECT_PACKAGES = {"src", "digit_reader", "tools", "benchmarks", "tests"}
OTHER_MODULES = {"pip", "pytest", "venv"}  # `python -m` targets that belong to Python or its tools
# Code spans that are exactly a path under one of these folders must name an existing file or folder
# (data/ and models/ are left out: they are DVC outputs, absent before `make repro`).
CHECKED_FOLDERS = ("src", "digit_reader", "tools", "benchmarks", "tests", "presets", "notebooks", "docs", "metrics")

FENCED = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n.*?^ {0,3}\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def without_code(text: str) -> str:
    """The prose: fenced blocks and inline code spans blanked out (links inside them are not links)."""
    text = FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return INLINE_CODE.sub(" ", text)


def code_parts(text: str) -> tuple[list[str], list[str]]:
    """(lines of fenced blocks, with shell comments removed; inline code spans)."""
    lines = []
    for block in FENCED.finditer(text):
        for line in block.group(0).splitlines()[1:-1]:
            lines.append(re.sub(r"(^|\s)#.*$", "", line))
    spans = [m.group(2).strip() for m in INLINE_CODE.finditer(FENCED.sub("", text))]
    return lines, spans


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as rendered, lower-cased, punctuation removed
    (letters, digits, `_`, `-` and spaces stay), each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen, found = {}, set()
    for match in HEADING.finditer(FENCED.sub("", page.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link or image of `page` that does not resolve, with the reason."""
    text = without_code(page.read_text(encoding="utf-8"))
    problems = []
    for target in [m.group(1) for m in LINK.finditer(text)] + [m.group(1) for m in HTML_LINK.finditer(text)]:
        if SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


def pipeline_outputs(root: Path = ROOT) -> list[str]:
    """The paths dvc.lock records as stage outputs: DVC's, not git's, so absent from a fresh clone."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return []
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    return [out["path"] for stage in stages.values() for out in stage.get("outs", [])]


def missing_paths(page: Path, root: Path = ROOT) -> list[str]:
    """Code spans that are exactly a project path (no placeholders) but name nothing: neither a
    file of the repository nor a pipeline output (or a path inside one)."""
    _, spans = code_parts(page.read_text(encoding="utf-8"))
    pattern = re.compile(rf"^(?:{'|'.join(CHECKED_FOLDERS)})/[\w./-]*$")
    outputs = pipeline_outputs(root)

    def produced(span: str) -> bool:
        return any(span.rstrip("/") == out or span.startswith(out + "/") for out in outputs)

    return [span for span in spans if pattern.match(span) and not (root / span).exists() and not produced(span)]


def makefile_targets(root: Path = ROOT) -> set[str]:
    targets = set()
    for line in (root / "Makefile").read_text().splitlines():
        match = re.match(r"^([\w./$()-][\w./$() -]*?)\s*::?(?!=)", line)
        if match and not line.startswith("\t"):
            targets.update(match.group(1).split())
    return targets


def command_problems(page: Path, root: Path = ROOT) -> list[str]:
    """What the page's commands name that does not exist: `python -m X` and `torchrun ... -m X`
    (X a project module, or a placeholder such as `src.<stage>` under a project package),
    `uvicorn module:attr`, `make TARGET`, and `-S key=value` overrides (a key of params.yaml)."""
    lines, spans = code_parts(page.read_text(encoding="utf-8"))
    commands = lines + spans
    problems = []
    for command in commands:
        for module in re.findall(r"\b(?:python3?|torchrun\b.*?)\s+-m\s+([A-Za-z_][\w.<>]*)", command):
            problems += module_problem(module, root)
        if "uvicorn" in command:
            for module, attr in re.findall(r"\b([A-Za-z_][\w.]*):([A-Za-z_]\w*)\b", command):
                problems += module_problem(module, root)
                source = root / (module.replace(".", "/") + ".py")
                if source.exists() and not re.search(rf"^(def {attr}\b|{attr}\s*=)", source.read_text(), re.M):
                    problems.append(f"uvicorn {module}:{attr}: no `{attr}` in {source.relative_to(root)}")
    targets = makefile_targets(root)
    for line in lines:
        for target in re.findall(r"(?:^|&&|;|\|\||\$ )\s*make\s+([A-Za-z][\w-]*)", line.strip()):
            if target not in targets:
                problems.append(f"make {target}: no such target in the Makefile")
    for span in spans:
        match = re.match(r"^make\s+([A-Za-z][\w-]*)", span)
        if match and match.group(1) not in targets:
            problems.append(f"make {match.group(1)}: no such target in the Makefile")
    params = yaml.safe_load((root / "params.yaml").read_text())
    for command in commands:
        for key in re.findall(r"-S\s+['\"]?~?([A-Za-z_][\w.]*)(?:=|['\"\s]|$)", command):
            if not has_key(params, key):
                problems.append(f"-S {key}: no such key in params.yaml")
    return problems


def module_problem(module: str, root: Path) -> list[str]:
    if "<" in module:  # a placeholder: the package before it must exist
        package = module.split("<")[0].rstrip(".")
        return [] if (root / package.replace(".", "/")).is_dir() else [f"python -m {module}: no package {package}"]
    top = module.split(".")[0]
    if top in OTHER_MODULES:
        return []
    if top not in PROJECT_PACKAGES:
        return [f"python -m {module}: not a module of this project ({', '.join(sorted(PROJECT_PACKAGES))})"]
    path = root / module.replace(".", "/")
    if path.with_suffix(".py").is_file() or (path / "__main__.py").is_file():
        return []
    return [f"python -m {module}: no file {path.relative_to(root)}.py"]


def has_key(tree, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_relative_link_and_image_resolves(page):
    problems = broken_links(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_project_path_quoted_in_code_exists(page):
    problems = missing_paths(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", HOW_TO_PAGES, ids=name)
def test_every_command_names_something_that_exists(page):
    problems = command_problems(page)
    assert not problems, "\n".join(problems)


def test_the_readme_is_an_entrance_not_a_manual():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move detail to docs/"


def test_the_readme_links_every_docs_page():
    linked = {Path(m.group(1).partition("#")[0]).name for m in LINK.finditer(without_code(README.read_text()))}
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= linked


# The checks themselves must be able to fail: each is run on a small broken project.

@pytest.fixture
def broken_project(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("def main(): ...\n")
    (tmp_path / "Makefile").write_text("repro: venv\n\tdvc repro\n")
    (tmp_path / "params.yaml").write_text("train:\n  cnn:\n    lr: 0.1\n")
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## The `fast` preset – 2× faster\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n"
        "[fine](docs/other.md#the-fast-preset--2-faster) [missing](docs/gone.md) ![image](docs/none.png)\n"
        "[bad anchor](docs/other.md#nowhere) [web](https://example.com/x) [self](#title)\n"
        "`[not a link](nowhere.md)` and `src/gone.py` beside `src/train.py`\n\n"
        "```bash\nmake repro && make tset   # make sure\npython -m src.train cnn\npython -m src.trian cnn\n"
        "python -m serving\ndvc exp run -S train.cnn.lr=0.2 -S train.cnn.lrr=0.2\n"
        "uvicorn --factory src.train:main\nuvicorn --factory src.train:app\n```\n")
    return tmp_path, page


def test_the_checks_catch_broken_links_paths_and_commands(broken_project):
    root, page = broken_project
    assert broken_links(page, root) == ["docs/gone.md: no such file", "docs/none.png: no such file",
                                        "docs/other.md#nowhere: no heading with anchor #nowhere in other.md"]
    assert missing_paths(page, root) == ["src/gone.py"]
    problems = command_problems(page, root)
    assert problems == ["python -m src.trian: no file src/trian.py",
                        "python -m serving: not a module of this project "
                        "(benchmarks, digit_reader, src, tests, tools)",
                        "uvicorn src.train:app: no `app` in src/train.py",
                        "make tset: no such target in the Makefile",
                        "-S train.cnn.lrr: no such key in params.yaml"]
