"""The documentation holds together: every relative link and image in the README, docs/*.md,
the benchmark notes (benchmarks/notes/*.md) and the results index (benchmarks/results/README.md)
points at a file of the repository (and at a heading of it, for `#anchors`); every project path
quoted in code exists; the README stays an entrance (at most README_LIMIT bytes); and every command
the README and docs/ tell people to run names a module, attribute, make target or params key that
exists.

And what a test can check of the docs being true: a measured number in a table of the README or
docs/ names the results or metrics file it comes from; the README's folder list names every module;
no .gitignore ignores a file git tracks, or names one that is gone; and a comment in the code that
points to the notes points to a section of them that exists.
"""
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOTES = ROOT / "benchmarks" / "notes"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted(NOTES.glob("*.md")),
         ROOT / "benchmarks" / "results" / "README.md"]
HOW_TO_PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # the notes are history, not instructions
README_LIMIT = 12_000
PROJECT_PACKAGES = {"src", "digit_reader", "tools", "benchmarks", "tests"}
LISTED_PACKAGES = ("src", "digit_reader", "tools", "benchmarks")  # the README's folder list names each module of these
OTHER_MODULES = {"pip", "pytest", "venv"}  # `python -m` targets that belong to Python or its tools
# Code spans that are exactly a path under one of these folders must name an existing file or folder
# (data/ and models/ are left out: they are DVC outputs, absent before `make repro`).
CHECKED_FOLDERS = ("src", "digit_reader", "tools", "benchmarks", "tests", "presets", "notebooks", "docs", "metrics")
# Where code and settings point to the notes (the notes themselves and the docs are checked as pages).
POINTER_SOURCES = ("src/**/*.py", "digit_reader/**/*.py", "tools/**/*.py", "benchmarks/*.py", "params.yaml",
                   "presets/*.yaml", "dvc.yaml", "Makefile")

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


# A measured number: a percentage, a time, a rate or a speed-up (not a size such as N×1×28×W).
MEASURED = re.compile(r"\d(?:[\d,.]*\d)?\s*(?:%|×(?![\w])|ms\b|s\b|min\b|(?:requests|img|images)/s\b)")
EVIDENCE = re.compile(r"^(?:benchmarks/results/[\w.-]+\.json|metrics/[\w./-]+\.(?:json|csv))$")
GIT_SHOW = re.compile(r"^git show ([0-9a-f]{7,40}):(\S+)$")


def git(root: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def names_evidence(text: str, page: Path, root: Path = ROOT) -> bool:
    """Whether `text` names a results or metrics file: a link to one, or `git show COMMIT:PATH` of
    one that the history holds."""
    for target in LINK.findall(without_code(text)):
        path = (page.parent / target.partition("#")[0]).resolve()
        if not SCHEME.match(target) and path.is_relative_to(root.resolve()) \
                and EVIDENCE.match(path.relative_to(root.resolve()).as_posix()):
            return True
    for span in code_parts(text)[1]:
        match = GIT_SHOW.match(span)
        if match and EVIDENCE.match(match.group(2)) and git(root, "cat-file", "-e", f"{match.group(1)}:{match.group(2)}").returncode == 0:
            return True
    return False


def tables(text: str):
    """Each table of `text` outside code: (the paragraph before it, its body rows as (line number,
    cells), the paragraph after it)."""
    lines = FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text).splitlines()

    def paragraph(index: int, step: int) -> str:
        while 0 <= index < len(lines) and not lines[index].strip():
            index += step
        found = []
        while 0 <= index < len(lines) and lines[index].strip() and not lines[index].startswith(("#", "|")):
            found.append(lines[index])
            index += step
        return "\n".join(found[::step])

    index = 0
    while index < len(lines):
        if not lines[index].startswith("|"):
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].startswith("|"):
            index += 1
        rows = [(number + 1, [cell.strip() for cell in lines[number].strip().strip("|").split("|")])
                for number in range(start + 2, index)]  # after the header and its |---| line
        yield paragraph(start - 1, -1), rows, paragraph(index, 1)


def unbacked_numbers(page: Path, root: Path = ROOT) -> list[str]:
    """Table cells that quote a measured number without naming the file it comes from. A table
    either names its file in its caption (the paragraph right before or after it), or, if any cell
    names one, each cell with a measured number names its own."""
    problems = []
    for before, rows, after in tables(page.read_text(encoding="utf-8")):
        per_cell = any(names_evidence(cell, page, root) for _, cells in rows for cell in cells)
        captioned = names_evidence(before, page, root) or names_evidence(after, page, root)
        for number, cells in rows:
            for cell in cells:
                if MEASURED.search(without_code(cell)) and not (names_evidence(cell, page, root) if per_cell else captioned):
                    problems.append(f"{page.name}:{number}: {cell!r} quotes a measurement but names no results or metrics file")
    return problems


def folder_list(readme: Path = README) -> tuple[str, dict[str, str]]:
    """The README's list of folders (the code block of `## The folders`): its text, and each entry's
    text by folder (`src/`, `digit_reader/`, ...; an entry goes on over indented lines)."""
    section = readme.read_text(encoding="utf-8").partition("\n## The folders")[2]
    block = FENCED.search(section)
    entries, current = {}, None
    for line in (block.group(0).splitlines()[1:-1] if block else []):
        match = re.match(r"^([\w.-]+(?:/[\w.-]+)*/)\s+(.*)$", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif line.startswith(" ") and current:
            entries[current] += " " + line.strip()
        else:
            current = None
    return (block.group(0) if block else ""), entries


def unlisted_modules(root: Path = ROOT, readme: Path = README) -> list[str]:
    """The modules of LISTED_PACKAGES that the README's folder list does not name: by path, by
    name in the entry of the folder that holds them, or by naming a subfolder of it as a whole
    (`static/`)."""
    block, entries = folder_list(readme)

    def named(word: str, text: str, folder: bool = False) -> bool:
        end = "/" if folder else r"(?![\w/-])"
        return re.search(rf"(?<![\w/.-]){re.escape(word)}{end}", text) is not None

    def listed(module: Path) -> bool:
        parts = module.relative_to(root).with_suffix("").parts
        if module.relative_to(root).as_posix() in block:
            return True
        for depth in range(len(parts) - 1, 0, -1):
            text = entries.get("/".join(parts[:depth]) + "/")
            if text is not None:
                rest = parts[depth:]
                return named(rest[0], text, folder=True) if len(rest) > 1 else named(rest[0], text)
        return False

    modules = [path for package in LISTED_PACKAGES for path in sorted((root / package).rglob("*.py"))
               if path.name != "__init__.py" and "__pycache__" not in path.parts]
    return [path.relative_to(root).as_posix() for path in modules if not listed(path)]


def gitignore_problems(root: Path = ROOT) -> list[str]:
    """Lines of the repository's .gitignore files that ignore a file git tracks, or that name, in a
    comment, a project path that does not exist."""
    problems = []
    tracked_ignored = git(root, "ls-files", "--cached", "--ignored", "--exclude-per-directory=.gitignore", "-z").stdout
    for path in filter(None, tracked_ignored.split("\0")):
        source, _, rest = git(root, "check-ignore", "--verbose", "--no-index", "--", path).stdout.partition("\t")[0].partition(":")
        line, _, pattern = rest.partition(":")
        problems.append(f"{source}:{line}: {pattern} ignores {path}, which git tracks")
    paths = re.compile(rf"(?<![\w/.-])(?:{'|'.join(CHECKED_FOLDERS)})/[\w./-]*\w")
    for name in filter(None, git(root, "ls-files", "-z", "--", ".gitignore", "*/.gitignore").stdout.split("\0")):
        for number, line in enumerate((root / name).read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                ignore_dir = (root / name).parent
                problems += [f"{name}:{number}: names {path}, which does not exist" for path in paths.findall(line)
                             if not (root / path).exists() and not (ignore_dir / path).exists()]
    return problems


def note_pointers(root: Path = ROOT) -> list[str]:
    """Where the code and settings point to the benchmark notes, what is wrong with each pointer:
    each must name a section (`benchmarks/notes/FILE.md#anchor`) that exists."""
    pointer = re.compile(r"benchmarks/(NOTES\.md|notes/[\w.-]*)(#[\w-]+)?")
    problems = []
    for source in sorted({path for pattern in POINTER_SOURCES for path in root.glob(pattern)}):
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            for match in pointer.finditer(line):
                where, target, anchor = f"{source.relative_to(root)}:{number}", root / "benchmarks" / match.group(1), match.group(2)
                if match.group(1) == "NOTES.md":
                    problems.append(f"{where}: {match.group(0)}: split by topic: point to a section of benchmarks/notes/")
                elif not target.is_file():
                    problems.append(f"{where}: {match.group(0)}: no such file")
                elif not anchor:
                    problems.append(f"{where}: {match.group(0)}: point to a section (#anchor), not to the whole file")
                elif anchor[1:] not in anchors(target):
                    problems.append(f"{where}: {match.group(0)}: no heading with that anchor")
    return problems


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


@pytest.mark.parametrize("page", HOW_TO_PAGES, ids=name)
def test_every_measured_number_in_a_table_names_its_file(page):
    problems = unbacked_numbers(page)
    assert not problems, "\n".join(problems)


def test_the_readme_folder_list_names_every_module():
    missing = unlisted_modules()
    assert not missing, f"README.md's folder list does not name: {', '.join(missing)}"


def test_no_gitignore_line_names_a_tracked_or_missing_path():
    problems = gitignore_problems()
    assert not problems, "\n".join(problems)


def test_code_points_to_a_section_of_the_notes():
    problems = note_pointers()
    assert not problems, "\n".join(problems)


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
        "uvicorn --factory src.train:main\nuvicorn --factory src.train:app\n```\n\n"
        "## Speed\n\n"  # a table that names its files cell by cell: each measured cell must name one
        "| kind | default | `fast` |\n|---|---|---|\n"
        "| A | 99.5% in 34 s | 3.8×, 99.1% ([file](benchmarks/results/a.json)) |\n"
        "| B | 99.6% in 66 s (`git show 0000000:metrics/m.json`) | not run |\n"
        "| C | 99.6% in 66 s ([metrics](metrics/m.json)) | input N×1×28×W |\n\n"
        "## Accuracy\n\nA table with no file anywhere.\n\n| model | accuracy |\n|---|---|\n| m | 98.8% |\n\n"
        "## Accuracy again\n\n| model | accuracy |\n|---|---|\n| m | 98.8% |\n\n"
        "From [`metrics/m.json`](metrics/m.json), one run.\n\n"
        "## The folders\n\n```\nsrc/        train (the stage)\n            and more\ntools/      presets, sub/\n"
        "docs/       the pages\n```\n")
    for path in ("benchmarks/results/a.json", "metrics/m.json", "src/extra.py", "tools/presets.py",
                 "tools/sub/thing.py", "tools/other/helper.py", "tools/__init__.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}\n" if path.endswith(".json") else "")
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


def test_the_checks_catch_unbacked_numbers_and_unlisted_modules(broken_project):
    root, page = broken_project
    assert unbacked_numbers(page, root) == [
        "README.md:21: '99.5% in 34 s' quotes a measurement but names no results or metrics file",
        "README.md:22: '99.6% in 66 s (`git show 0000000:metrics/m.json`)' quotes a measurement but names no "
        "results or metrics file",
        "README.md:31: '98.8%' quotes a measurement but names no results or metrics file"]
    assert unlisted_modules(root, page) == ["src/extra.py", "tools/other/helper.py"]


def test_the_gitignore_check_catches_tracked_and_missing_paths(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "src" / "kept.py").write_text("")
    (tmp_path / "logs" / "old.txt").write_text("")
    (tmp_path / ".gitignore").write_text("/src/kept.py\n*.log\n# made by src/gone.py, kept by src/kept.py\n")
    (tmp_path / "logs" / ".gitignore").write_text("/old.txt\n")
    for command in (["init", "-q"], ["add", ".gitignore", "logs/.gitignore"], ["add", "-f", "src/kept.py", "logs/old.txt"]):
        assert git(tmp_path, *command).returncode == 0
    assert gitignore_problems(tmp_path) == ["logs/.gitignore:1: /old.txt ignores logs/old.txt, which git tracks",
                                            ".gitignore:1: /src/kept.py ignores src/kept.py, which git tracks",
                                            ".gitignore:3: names src/gone.py, which does not exist"]


def test_the_pointer_check_catches_pointers_to_no_section(tmp_path):
    (tmp_path / "benchmarks" / "notes").mkdir(parents=True)
    (tmp_path / "benchmarks" / "notes" / "training.md").write_text("# Training\n\n## The fills off\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text(
        "# the measurements: benchmarks/NOTES.md\n# benchmarks/notes/training.md\n"
        "# benchmarks/notes/training.md#the-fills-off\n# benchmarks/notes/training.md#nowhere\n"
        "x = 1  # benchmarks/notes/gone.md#x\n")
    assert note_pointers(tmp_path) == [
        "src/a.py:1: benchmarks/NOTES.md: split by topic: point to a section of benchmarks/notes/",
        "src/a.py:2: benchmarks/notes/training.md: point to a section (#anchor), not to the whole file",
        "src/a.py:4: benchmarks/notes/training.md#nowhere: no heading with that anchor",
        "src/a.py:5: benchmarks/notes/gone.md#x: no such file"]
