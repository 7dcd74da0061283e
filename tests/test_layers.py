"""The layer boundary: engines/ never imports the UI, HTTP or store layers (or the studio); the doors
import what they use by name, so a renamed module fails loudly; door modules stay short."""

import ast
import re
from pathlib import Path

import pytest

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


# -- SQL lives in studio/store/ only: one owner per table ------------------------------------------
SQL = [
    re.compile(r"\binsert\s+(?:or\s+\w+\s+)?into\b", re.I),
    re.compile(r"\bupdate\s+(?:or\s+\w+\s+)?[\w\"]+\s+set\b", re.I),
    re.compile(r"\bdelete\s+from\b", re.I),
    re.compile(r"\bcreate\s+(?:temp\w*\s+)?table\b", re.I),
]


def select_from(tables: set[str]) -> re.Pattern:
    """SELECT … FROM <a table of ours>: the table name keeps prose ("select a model from the list") out."""
    names = "|".join(sorted(map(re.escape, tables)))
    return re.compile(rf"\bselect\b[\s\S]+?\bfrom\s+[\"']?(?:{names})\b", re.I)


def sql_strings(path: Path, patterns: list[re.Pattern]) -> list[str]:
    """String constants (f-strings with their holes as {}) that look like SQL; docstrings are prose."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        else:
            continue
        if any(p.search(text) for p in patterns):
            found.append(f"line {node.lineno}: {text[:80]!r}")
    return found


@pytest.fixture(scope="module")
def sql_patterns(tmp_path_factory) -> list[re.Pattern]:
    from studio.store import Store

    tables = Store(tmp_path_factory.mktemp("schema") / "studio.db").tables() | {"sqlite_master"}
    return [*SQL, select_from(tables)]


def test_sql_lives_in_the_store_only(sql_patterns):
    """Services, the UI and the API call studio/store/ modules; none of them writes a query."""
    offenders = {}
    for f in sorted((REPO / "studio").rglob("*.py")):
        rel = f.relative_to(REPO).as_posix()
        if rel.startswith("studio/store/"):
            continue
        if found := sql_strings(f, sql_patterns):
            offenders[rel] = found
    assert offenders == {}, "move these queries into a studio/store/ module (the table's owner)"


def test_the_sql_checker_sees_queries_not_prose(tmp_path, sql_patterns):
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Docstrings may say SELECT * FROM outputs."""\n'
        'LABEL = "Select a model from the list, then update it; settings are kept."\n'
        'A = "select id from outputs where kind = ?"\n'
        'B = f"SELECT {cols} FROM datasets"\n'
        'C = ("UPDATE jobs SET status = ? "\n     "WHERE id = ?")\n'
        'D = "insert or replace into settings (key) values (?)"\n'
        'E = "DELETE FROM ratings"\n'
        'F = "create table x (id)"\n'
    )
    assert [line.split(":")[0] for line in sql_strings(bad, sql_patterns)] == [
        "line 3", "line 4", "line 5", "line 7", "line 8", "line 9"]


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
