"""The label catalogue (dashboard/labels.py and the per-page label modules):
every entry in both languages and non-empty, no CJK in English, and every
label a template or script names exists (issue 18: natural zh-CN and en
everywhere).  tests/test_centre_i18n_browser.py reads the rendered pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard import history_labels, labels, map_labels, plan_defaults, worker_labels

DASHBOARD = Path(labels.__file__).parent
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")

TABLES: dict[str, dict[str, tuple[str, str]]] = {
    **labels._TABLES, **history_labels._TABLES, **map_labels._TABLES,
    "worker": worker_labels.WORKER,
}


# the language switch names the other language in its own words
SWITCH = {("text", "language"), ("worker", "language")}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_entry_has_both_languages(name: str) -> None:
    for key, value in TABLES[name].items():
        assert isinstance(value, tuple) and len(value) == 2, (name, key)
        zh, en = value
        assert zh.strip() and en.strip(), (name, key, value)
        if (name, key) not in SWITCH:
            assert not CJK.search(en), f"{name}.{key}: Chinese in the English text {en!r}"


def test_every_plan_step_has_both_languages() -> None:
    for key, (zh, en) in plan_defaults.STEPS.items():
        assert zh.strip() and en.strip() and not CJK.search(en), key


def _used(text: str, pattern: str) -> set[tuple[str, str]]:
    return {(m[0], m[1]) for m in re.findall(pattern, text)}


def _label_uses() -> dict[str, set[tuple[str, str]]]:
    """(table, key) each template and script names, by file."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted((DASHBOARD / "templates").glob("*.html")):
        text = path.read_text(encoding="utf-8")
        uses = _used(text, r"\blabels\.(\w+)\.(\w+)")
        uses |= {("text", k) for k in re.findall(r"\btext\.(\w+)", text)}
        # {% set C = labels.centre %} ... C.key
        for alias, table in re.findall(r"set (\w+) = labels\.(\w+) ", text):
            uses |= {(table, k) for k in re.findall(rf"\b{alias}\.(\w+)", text)}
        found[path.name] = uses
    for path in sorted((DASHBOARD / "static").glob("*.js")):
        text = path.read_text(encoding="utf-8")
        uses = _used(text, r"\b(?:L|boot\.labels|desk\.boot\.labels)\.(\w+)\.(\w+)\b")
        # const P = L.plan; / const C = boot.labels.centre; ... P.key
        for alias, table in re.findall(
                r"const (\w+) = (?:L|boot\.labels|desk\.boot\.labels)\.(\w+);", text):
            uses |= {(table, k) for k in re.findall(rf"\b{alias}\.(\w+)\b", text)}
        found[path.name] = uses
    return found


# a table's own methods in a template (labels.types.items())
JINJA = {"items", "keys", "values", "get"}


def test_every_label_the_pages_name_exists() -> None:
    missing = {f"{name}: {table}.{key}" for name, uses in _label_uses().items()
               for table, key in uses
               if table in TABLES and key not in TABLES[table] and key not in JINJA}
    assert not missing, sorted(missing)


def test_the_pages_name_labels_at_all() -> None:
    uses = _label_uses()
    assert ("plan", "pick_result") in uses["panel.js"]
    assert ("desk", "keys") in uses["desk.html"]
    assert ("notify", "sent") not in uses["panel.js"]  # looked up by value: L.notify[n.status]
