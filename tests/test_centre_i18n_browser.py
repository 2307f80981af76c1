"""No untranslated words (issue 18): every page of the centre rendered in
Chromium in zh-CN and en, against the real centre on SQLite and PostgreSQL,
with alarms of several types on the desk (a button, a sensor reading,
supervision, a gateway warning) and an alarm's detail panel open.  A zh-CN
page shows no ASCII word outside the allow-list (ids, units, codes, the
product's name); an en page shows no Chinese outside the registry's own
data; no one-letter English unit beside Chinese ("30 s前"); one date
pattern per language on every page that shows dates; relative times in the
page's language on the device board; the bootstrap admin's role in Chinese
alone.  tests/test_centre_labels.py checks the catalogue itself."""

# ruff: noqa: F811 - the `desk` fixture is imported by name
from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.desk_centre import (  # noqa: F401 - fixtures
    CELL,
    HOUSEHOLD,
    REGISTERED,
    DeskCentre,
    centre_env,
    desk,
)
from tests.test_centre_browser import alarm
from tests.test_centre_registry_browser import _status

WAIT_MS = 30_000
PAGES = ("/registry", "/devices", "/hazards", "/overview", "/history", "/reports", "/map",
         "/plans")
# what a zh-CN page may show in Latin letters: the product, units, the
# language switch, the users' names (test data), codes and ids
ALLOWED = {"Homeguard", "English", "mA", "MB", "olga", "Olga", "admin", "ms", "CSV",
           "OpenStreetMap", "Leaflet", "s"}
ID = re.compile(r"\b(?:hg|gw)-[0-9a-z-]+|\b[A-Z]-?\d+\b|\b\w*\d\w*\b")
WORD = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]+")
# a digit, a one-letter English unit, then Chinese: "30 s前" (not "342 mA（")
UNIT_IN_CJK = re.compile(r"\d ?[A-Za-z](?![A-Za-z]) ?[\u3400-\u9fff]")
# the one date format of each language (Intl, the day, and to the second in
# 24 h where a time goes with it), and anything else that looks like a date
DATE = {"zh-CN": re.compile(r"\b\d{4}/\d{2}/\d{2}(?: \d{2}:\d{2}:\d{2})?\b"),
        "en": re.compile(r"\b\d{2}/\d{2}/\d{4}(?:, \d{2}:\d{2}:\d{2})?\b")}
DATE_LIKE = re.compile(r"\d{4}[-/.年]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}月\d{1,2}日")
DATED = {"desk detail fire", "/history", "/reports"}  # pages that must show a date
# the device board's "last seen", as Intl's short relative time words it
RELATIVE = {"zh-CN": re.compile(r"\d+ ?秒前"), "en": re.compile(r"\d+ sec\. ago")}
REGISTRY_DATA = {*HOUSEHOLD["address"].split(), HOUSEHOLD["compound"], HOUSEHOLD["community"],
                 CELL["name"], CELL["worker_name"], "王芳", "女儿", "中文"}


def _alarms(desk: DeskCentre) -> None:
    assert desk.ingest(
        alarm(1, device=REGISTERED, typ="fire", data={"btn": "f"}),
        alarm(2, device="hg-s-0301", typ="residual_current", data={"v": 342, "set": 300}),
        alarm(-1, device="hg-b-0302", typ="offline", kind="supervision", data={}),
        alarm(-2, device="gw-1", typ="data_lost", kind="supervision",
              data={"seqs": 12, "devices": 2, "most": "hg-b-0101", "most_seqs": 9}),
        alarm(-3, device="gw-1", typ="disk_low", kind="supervision",
              data={"free_mb": 40, "min_free_mb": 64}),
        alarm(-4, device="gw-1", typ="shedding", kind="supervision", data={"shed": 500}),
    ) == ["accepted"] * 6


def _foreign(text: str, lang: str) -> list[str]:
    if lang == "en":
        return sorted({w for w in CJK.findall(text) if w not in REGISTRY_DATA
                       and not any(w in d for d in REGISTRY_DATA)})
    text = ID.sub(" ", text)
    return sorted({w for w in WORD.findall(text) if w not in ALLOWED})


def _dates(text: str, lang: str) -> tuple[int, list[str]]:
    """How many dates in the language's format, and what else looks like a date."""
    shown = len(DATE[lang].findall(text))
    return shown, DATE_LIKE.findall(DATE[lang].sub(" ", text))


def _check(page: Page, lang: str, where: str, found: dict[str, list[str]]) -> None:
    text = page.inner_text("body")
    words = _foreign(text, lang)
    if lang == "zh-CN":
        words += [f"unit: {m}" for m in UNIT_IN_CJK.findall(text)]
    shown, other = _dates(text, lang)
    words += [f"date: {d}" for d in other]
    if where in DATED and not shown:
        words.append(f"no date in the {lang} format")
    if words:
        found[f"{lang} {where}"] = words


def test_every_page_speaks_one_language(desk: DeskCentre, page: Page) -> None:
    _alarms(desk)
    client = desk.operator("olga")
    assert client.post("/api/v1/alarms/1/ack", json={}).status_code == 200
    found: dict[str, list[str]] = {}
    for lang in ("zh-CN", "en"):
        page.context.add_cookies([
            {"name": "hg_session", "value": client.cookies["hg_session"], "url": desk.url},
            {"name": "hg_lang", "value": lang, "url": desk.url}])
        page.goto(desk.url + "/")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(page.locator("#alarm-rows tr")).to_have_count(6, timeout=WAIT_MS)
        _check(page, lang, "desk", found)
        for row in page.locator("#alarm-rows tr").all():
            row.click()
            expect(page.locator("#detail")).to_have_attribute(
                "data-alarm-id", row.get_attribute("data-alarm-id") or "", timeout=WAIT_MS)
            expect(page.locator("#plan li").first).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#notified li").first).to_be_visible(timeout=WAIT_MS)
            _check(page, lang, f"desk detail {row.get_attribute('data-type')}", found)
        for path in PAGES:
            if path == "/devices":  # seen just now: "N 秒前" / "N sec. ago"
                _status(desk, {"device": REGISTERED, "at_ms": int(time.time() * 1000),
                               "battery_mv": 3800})
            page.goto(desk.url + path)
            expect(page.locator("#lang-switch")).to_be_visible(timeout=WAIT_MS)
            page.wait_for_load_state("networkidle", timeout=WAIT_MS)
            if path == "/devices":
                expect(page.locator("#board-rows")).to_contain_text(RELATIVE[lang],
                                                                    timeout=WAIT_MS)
            _check(page, lang, path, found)
        page.context.clear_cookies()
        page.context.add_cookies([{"name": "hg_lang", "value": lang, "url": desk.url}])
        page.goto(desk.url + "/login")
        _check(page, lang, "/login", found)
    assert not found, found

    # the bootstrap admin has no name of its own: the header shows the role in
    # the page's language alone, not "Administrator · 管理员"
    admin = desk.client()
    for lang, role in (("zh-CN", "管理员"), ("en", "Administrator")):
        page.context.add_cookies([
            {"name": "hg_session", "value": admin.cookies["hg_session"], "url": desk.url},
            {"name": "hg_lang", "value": lang, "url": desk.url}])
        for path in ("/", "/devices"):
            page.goto(desk.url + path)
            expect(page.locator(".who")).to_have_text(role, timeout=WAIT_MS)
            if lang == "zh-CN":
                assert not _foreign(page.inner_text("body"), lang), path

