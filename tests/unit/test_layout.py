"""The layout rules a newcomer relies on: the edge stays on top, no import cycles, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("webhook_app", "workers")
MAX_LINES = 250


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every project module `path` imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def test_workers_never_import_the_web_edge():
    offenders = {name: sorted(i for i in imports if i.startswith("webhook_app"))
                 for name, imports in GRAPH.items() if name.startswith("workers")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_imports_itself_through_others():
    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(GRAPH[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(GRAPH[name])
        return seen

    # A package's __init__ importing its own modules is how packages export; not a cycle.
    cyclic = [name for name in GRAPH
              if any(name in reaches(other) for other in GRAPH[name] if not name.startswith(other + "."))]
    assert cyclic == []


# The floors of workers/ (the README's code map), lowest first; imports only go down.
# Within floors 1, 2 and 4 modules may import each other (the cycle test still holds); the stages
# of floor 3 import only stages downstream of them: sync -> ingest -> hydration -> delivery.
FLOORS = {
    1: ("workers.settings", "workers.account", "workers.records", "workers.errors", "workers.durations",
        "workers.times", "workers.environment", "workers.crypto", "workers.metrics", "workers.handler",
        "workers.plugin", "workers.priority", "workers.graph_page", "workers.urls"),
    2: ("workers.state", "workers.events", "workers.graph", "workers.scheduler", "workers.stage"),
    3.0: ("workers.delivery", "workers.inbox", "workers.connect"),
    3.1: ("workers.hydration",),
    3.2: ("workers.ingest",),
    3.3: ("workers.sync",),
    4: ("workers.runtime", "workers.tasks", "workers.celery_app", "workers.playground"),
    5: ("workers.cli", "webhook_app"),
}
SHARED_FLOORS = {1, 2, 4, 5}


def _floor(module: str) -> float:
    for floor, packages in FLOORS.items():
        if any(module == package or module.startswith(package + ".") for package in packages):
            return floor
    raise AssertionError(f"{module} is on no floor: add its package to FLOORS")


def _package(module: str) -> str:
    return next(package for packages in FLOORS.values() for package in packages
                if module == package or module.startswith(package + "."))


def test_every_module_has_a_floor_and_imports_only_go_down():
    upward = sorted(f"{name} -> {imported}" for name, imports in GRAPH.items() if name != "workers"
                    for imported in imports - {"workers"}
                    if _package(name) != _package(imported)
                    and (_floor(imported) > _floor(name)
                         or (_floor(imported) == _floor(name) and _floor(name) not in SHARED_FLOORS)))
    assert upward == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concern"


def test_plugin_authors_need_one_module():
    """`workers.plugin` names what a plugin uses, the same objects as before; the example plugin
    imports nothing else of inbox-relay."""
    from workers import errors, plugin, records
    from workers.delivery import plugins

    assert plugin.__all__ == ["Event", "Handler", "HandlerRejected", "Retry"]
    assert (plugin.Event, plugin.Handler, plugin.HandlerRejected) == (
        records.Event, plugins.Handler, errors.HandlerRejected)
    assert issubclass(plugin.Retry, errors.RelayError) and plugin.Retry is not plugin.HandlerRejected
    example = ROOT / "examples" / "handler-plugin" / "inbox_relay_kinds" / "__init__.py"
    used = {node.module for node in ast.walk(ast.parse(example.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workers")}
    assert used == {"workers.plugin"}


def test_environment_variables_are_named_in_one_module():
    """The environment is a second configuration channel: every name of it lives in
    workers/environment.py, so that a reader finds them all there."""
    import re

    pattern = re.compile(r"^(INBOX_RELAY|META|PROMETHEUS)_[A-Z_]+$")
    spelled = {(name, node.value) for name, path in MODULES.items() if name != "workers.environment"
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Constant) and pattern.match(str(node.value))}
    assert not spelled


def test_nothing_imports_the_celery_entry_point():
    """workers.celery_app builds its app at import (and may start the private Redis): it is for
    `celery -A` alone; code builds an app with create_celery(settings)."""
    assert [name for name, imports in GRAPH.items() if "workers.celery_app" in imports] == []


def test_no_two_test_files_flush_the_same_redis_database():
    # Test files run at once (pytest-xdist, one file per worker): a database one file flushes
    # must be no other file's.
    # Database 0 is the exception: tests share it, each under a key prefix of its own.
    pattern = re.compile(r"redis_url\((\d+)\)|TEST_REDIS \+ \"/(\d+)\"|127\.0\.0\.1:6379/(\d+)")
    owners: dict[str, set[str]] = {}
    for path in (ROOT / "tests").rglob("*.py"):
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            owners.setdefault(next(filter(None, match.groups())), set()).add(path.name)
    assert len(owners) > 3, "few databases found: the pattern no longer matches how tests name them"
    shared = {db: files for db, files in owners.items() if len(files) > 1 and db != "0"}
    assert not shared, f"databases used by more than one file: {shared}"
