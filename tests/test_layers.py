"""The layer boundary: engines/ never imports the UI, HTTP or store layers (or the studio); the doors
import what they use by name, so a renamed module fails loudly; door modules stay short."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_ENGINES = {"gradio", "fastapi", "starlette", "uvicorn", "sqlite3", "studio"}


def imported_top_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_engines_import_no_ui_http_or_store():
    files = sorted((REPO / "engines").rglob("*.py"))
    assert files, "engines/ has no Python files"
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_top_modules(f) & FORBIDDEN_IN_ENGINES)
        for f in files
        if imported_top_modules(f) & FORBIDDEN_IN_ENGINES
    }
    assert offenders == {}


def test_store_and_services_do_not_import_the_doors():
    """studio.store and studio.services sit below the UI and the API."""
    offenders = {}
    for folder in ("studio/store", "studio/services"):
        for f in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                mod = None
                if isinstance(node, ast.ImportFrom) and node.module:
                    mod = node.module
                elif isinstance(node, ast.Import):
                    mod = node.names[0].name
                if mod and (mod.startswith(("studio.ui", "studio.api", "gradio", "fastapi"))):
                    offenders.setdefault(str(f.relative_to(REPO)), []).append(mod)
    assert offenders == {}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom gradio import Blocks\n")
    assert imported_top_modules(bad) == {"sqlite3", "gradio"}


def test_the_doors_import_their_modules_by_name():
    """No tab or router looked up by a string at run time: a missing module is an ImportError at
    start-up, not a tab or routes that quietly vanish."""
    offenders = []
    for folder in ("studio/ui", "studio/api"):
        for f in sorted((REPO / folder).rglob("*.py")):
            text = f.read_text(encoding="utf-8")
            if "import_module" in text or "__import__" in text:
                offenders.append(str(f.relative_to(REPO)))
    assert offenders == []


MAX_DOOR_LINES = 450
WHY_LONG = "long because"  # a module over the limit says why near its top, e.g. "# Long because …"


def test_door_modules_are_short_or_say_why():
    offenders = {}
    for folder in ("studio/ui", "studio/api"):
        for f in sorted((REPO / folder).rglob("*.py")):
            lines = f.read_text(encoding="utf-8").splitlines()
            if len(lines) > MAX_DOOR_LINES and not any(WHY_LONG in line.lower() for line in lines[:20]):
                offenders[str(f.relative_to(REPO))] = len(lines)
    assert offenders == {}
