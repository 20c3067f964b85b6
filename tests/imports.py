"""Following a module's imports through the project's files (ast): what dvc.yaml's code deps are
checked against (tests/test_stage_declarations.py), and what the tests' cached quick models are
keyed by (tests/conftest.py), so that neither is a list kept by hand."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The project file of a module name (None for anything outside the project)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_files(path: Path, seen: set[Path] | None = None, root: Path = ROOT) -> set[Path]:
    """Every project file that `path` imports, directly or through other project files, at
    module level or inside functions. An import it cannot follow (relative, or by a name
    computed at run time) fails, rather than be missed."""
    seen = set() if seen is None else seen
    if path in seen:
        return seen
    seen.add(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}:{node.lineno}: a relative import; write it absolute, as the project does"
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            assert not (isinstance(node, ast.Call) and dynamic_import(node.func)), \
                f"{path}:{node.lineno}: an import by a computed name, which no dep check can follow"
            continue
        for name in names:
            # `import a.b` runs a/__init__.py too
            for prefix in (".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)):
                found = module_file(prefix, root)
                if found:
                    imported_files(found, seen, root)
    return seen


def dynamic_import(func: ast.expr) -> bool:
    """`__import__(...)`, `importlib.import_module(...)` or `import_module(...)`."""
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in ("__import__", "import_module")


def code_of(*modules: str) -> list[Path]:
    """The project files that the named modules run, themselves and all they import."""
    return sorted(set().union(*(imported_files(module_file(m)) for m in modules)))
