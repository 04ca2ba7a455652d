"""The package layering of docs/contributing.md holds: hw <- sim <- scripts, tb on top.

Scans the import statements of every module (``ast``, so strings and comments
do not count) and fails naming each import that points the wrong way.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: package -> top-level packages it must not import.
FORBIDDEN = {
    "hw": {"sim", "tb", "scripts", "formal"},
    "sim": {"tb", "scripts", "formal"},
    "scripts": {"tb", "formal"},
}


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def violations(repo=REPO):
    bad = []
    for pkg, forbidden in FORBIDDEN.items():
        for path in sorted((repo / pkg).rglob("*.py")):
            for line, name in _imports(path):
                if name.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(repo)}:{line}: imports {name}")
    return bad


def test_dependencies_point_one_way():
    bad = violations()
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_check_can_fail(tmp_path):
    # A module of hw/ importing sim inside a function is reported (the scan is not vacuous).
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "x.py").write_text("def f():\n    from sim import tvp\n")
    assert violations(tmp_path) == ["hw/x.py:2: imports sim"]
