"""The architecture's checkable rules (DESIGN.md), read from the source: one owner for each
operating-system resource, and a decision core that touches none."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "reentr"

OWNERS = [
    # (what, the only modules that may do it)
    ("import watchfiles", ["watch/backend.py"]),
    ("start a process", ["process.py"]),
    ("call killpg", ["process.py"]),
    # sample_app.py is not reentr: it is the program `reentr bench` restarts, with its own
    # SIGTERM handler.
    ("call signal.signal", ["sample_app.py", "signals.py"]),
    ("call sys.exit", ["cli/main.py"]),
]

PURE = ["policy", "restarts", "timing", "loops", "events", "errors", "config", "graph", "services",
        "outputs", "dotenv"]
"""Modules that decide or compute, and touch no operating-system resource, even through what
they import."""
OS_MODULES = {"subprocess", "socket", "select", "fcntl", "termios", "threading", "shutil",
              "tempfile", "ctypes", "watchfiles"}
OS_OWNERS = {"process", "watch", "signals", "terminal", "sockets", "ready", "runner", "bench",
             "cli", "report", "sources", "sample_app", "control"}


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(SRC)): ast.parse(path.read_text())
            for path in SRC.rglob("*.py")}


STARTERS = re.compile(
    r"(^|\.)(Popen|run|call|check_call|check_output|getoutput|getstatusoutput)$"
    r"|(^|\.)(system|popen|fork|forkpty|posix_spawnp?|exec[lv]p?e?|spawn[lv]p?e?)$"
    r"|(^|\.)create_subprocess_(exec|shell)$")
"""Every way Python starts a process: subprocess's functions, os.system, os.popen, fork,
posix_spawn, the exec and spawn families, asyncio's."""
STARTING_MODULES = ("subprocess", "os", "pty", "asyncio")


def _starts_a_process(node: ast.Call) -> bool:
    called = ast.unparse(node.func)
    module = called.split(".")[0]
    return module in STARTING_MODULES and bool(STARTERS.search(called))


def _does(tree: ast.Module, what: str) -> bool:
    for node in ast.walk(tree):
        if what == "start a process" and isinstance(node, ast.Call) and _starts_a_process(node):
            return True
        if what == "import watchfiles" and isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                alias.name for alias in node.names]
            if any(name.split(".")[0] == "watchfiles" for name in names):
                return True
        if isinstance(node, ast.Call) and what != "start a process":
            called = ast.unparse(node.func)
            target = what.removeprefix("call ")
            if called == target or called.endswith("." + target):
                return True
    return False


@pytest.mark.parametrize(("what", "owner"), OWNERS)
def test_one_module_owns_each_resource(what: str, owner: list[str]) -> None:
    doing = sorted(name for name, tree in _modules().items() if _does(tree, what))
    assert doing == owner, f"only {owner} may {what}"


@pytest.mark.parametrize("code", [
    "subprocess.run(['git'])", "subprocess.check_output(['git'])", "subprocess.call(['x'])",
    "subprocess.Popen(['x'])", "os.system('x')", "os.execvp('x', ['x'])", "os.spawnl(0, 'x')",
    "os.fork()", "os.posix_spawn('x', ['x'], {})", "asyncio.create_subprocess_exec('x')"])
def test_the_rule_sees_every_way_of_starting_a_process(code: str) -> None:
    assert _does(ast.parse(code), "start a process")
    assert not _does(ast.parse("process.start(argv)\nos.getpid()"), "start a process")


def test_nothing_imports_click_by_name() -> None:
    # typer 0.29 vendors click: a plain install of reentr has no `click` to import (it is
    # there in a dev install only because uvicorn needs it). compat.py takes click's classes
    # from whichever click typer uses.
    named = sorted(name for name, tree in _modules().items()
                   if any(imported.split(".")[0] == "click" for imported in _imports(tree)))
    assert named == []


def _imports(tree: ast.Module) -> set[str]:
    """The modules `tree` imports: stdlib roots, and reentr's own by their first name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "reentr":
                found |= {f"reentr.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


@pytest.mark.parametrize("name", PURE)
def test_the_decision_core_touches_no_operating_system_resource(name: str) -> None:
    trees = {path.removesuffix(".py").replace("/", ".").removesuffix(".__init__"): tree
             for path, tree in _modules().items()}
    seen, todo = set(), [name]
    while todo:  # everything it imports, through reentr's own modules
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imported in _imports(trees[module]):
            assert imported.split(".")[0] not in OS_MODULES, f"{name} -> {module}: {imported}"
            if imported.startswith("reentr."):
                own = imported.removeprefix("reentr.")
                assert own.split(".")[0] not in OS_OWNERS, f"{name} -> {module}: {imported}"
                todo.append(own)


def test_every_function_body_is_at_most_60_lines() -> None:
    """DESIGN.md: a longer function is split where the split names an idea (ruff's size rules
    count branches and statements, not lines)."""
    long = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(
                        body[0].value, ast.Constant):
                    body = body[1:]  # the docstring is not code
                lines = (node.end_lineno or 0) - body[0].lineno + 1
                if lines > 60:
                    long.append(f"{name}:{node.name} ({lines} lines)")
    assert long == []
