"""The package docstring is the map of the code: every module is on it, and nothing else is."""

import re

from conftest import ROOT

import billing_digest

PACKAGE = ROOT / "plugins" / "billing_digest"
_ENTRY = re.compile(r"^( {4}| {8})([a-z_]+/?) {2,}\S", re.M)


def map_entries() -> set[str]:
    """``window``, ``mail/``, ``mail/render``: the names the docstring lists, rooms and their modules."""
    entries, room = set(), ""
    for indent, name in _ENTRY.findall(billing_digest.__doc__ or ""):
        if len(indent) == 4:
            room = name if name.endswith("/") else ""
            entries.add(name)
        else:
            entries.add(room + name)
    return entries


def tree_entries() -> set[str]:
    entries = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py":
            if relative.parent != relative.parent.parent:
                entries.add(f"{relative.parent.as_posix()}/")
            continue
        if path.name != "__main__.py":
            entries.add(relative.with_suffix("").as_posix())
    return entries


def test_the_package_docstring_maps_every_module_and_only_those():
    assert map_entries() == tree_entries()


def test_the_map_reader_sees_both_levels():
    assert {"window", "mail/", "mail/render", "delivery/ledger_writer"} <= map_entries()
