"""The type stub shipped with the package describes fpyga._core as built."""

import ast
from pathlib import Path

import fpyga
from fpyga import _core


def _stub_names():
    stub = Path(fpyga.__file__).with_name("_core.pyi")
    assert stub.is_file(), "the package must ship _core.pyi"
    tree = ast.parse(stub.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name if isinstance(n, ast.FunctionDef) else n.target.id
                for n in node.body if isinstance(n, (ast.FunctionDef, ast.AnnAssign))
            }
    return names, members


def test_stub_matches_the_module():
    names, members = _stub_names()
    public = {n for n in dir(_core) if not n.startswith("__")}
    assert names == public
    for cls, attrs in members.items():
        for attr in attrs - {"__init__", "__buffer__"}:
            assert hasattr(getattr(_core, cls), attr), f"_core.{cls}.{attr} is in the stub only"
