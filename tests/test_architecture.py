"""The layer rules of DESIGN.md §2, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "consent_api"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield pytest.param(path, id=str(path.relative_to(PACKAGE.parent)))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def top(name: str) -> str:
    return name.split(".")[0]


# library -> the only modules (prefixes) allowed to import it
ONLY = {
    "flask": ("consent_api.web",),
    "werkzeug": ("consent_api.web",),
    "marshmallow": ("consent_api.web",),
    "pymongo": ("consent_api.store.mongo", "consent_api.store.open"),
    "mongomock": ("consent_api.store.mongo", "consent_api.store.open"),
    "bson": ("consent_api.store.mongo",),
    "sqlite3": ("consent_api.store.sqlite",),
    "jwt": ("consent_api.security.tokens", "consent_api.verify"),
    "granian": ("consent_api.commands.processes",),
    "prometheus_client": ("consent_api.web",),
    "chinese_calendar": ("consent_api.domain.deadlines",),
}


@pytest.mark.parametrize("path", list(modules()))
def test_third_party_imports_stay_in_their_layer(path):
    me = module_name(path)
    for name in imports_of(path):
        allowed = ONLY.get(top(name))
        if allowed is not None:
            assert me.startswith(allowed), f"{me} imports {name}; only {allowed} may"


@pytest.mark.parametrize("path", list(modules()))
def test_inner_layers_never_import_outer_ones(path):
    me = module_name(path)
    ours = {n for n in imports_of(path) if top(n) == "consent_api"}
    if me.startswith(("consent_api.domain", "consent_api.services", "consent_api.security",
                      "consent_api.store")):
        assert not any(n.startswith("consent_api.web") for n in ours), f"{me} imports the web layer"
    if me.startswith("consent_api.domain"):
        outer = ("consent_api.services", "consent_api.store", "consent_api.security", "consent_api.config")
        assert not any(n.startswith(outer) for n in ours), f"{me}: the domain depends on nothing but itself"
    if me.startswith("consent_api.store"):
        assert not any(n.startswith("consent_api.services") for n in ours), f"{me} imports services"
    if any(n == "consent_api.config" for n in ours):
        assert me.startswith(("consent_api.web", "consent_api.commands")) or me == "consent_api.cli", \
            f"{me} reads configuration: only the web layer and the CLI do"


def test_services_and_domain_are_free_of_flask_and_drivers():
    for path in list((PACKAGE / "services").rglob("*.py")) + list((PACKAGE / "domain").rglob("*.py")):
        banned = {top(n) for n in imports_of(path)} & {"flask", "werkzeug", "marshmallow", "pymongo",
                                                        "sqlite3", "jwt", "mongomock"}
        assert not banned, f"{path.name} imports {banned}"
