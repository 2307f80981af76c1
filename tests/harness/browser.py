"""Fixtures: a real Chromium (Debian's /usr/bin/chromium) driven by Playwright.

    def test_x(page, artifacts_dir):
        page.goto(url)                      # new context per test: 1366x800, zh-CN
        page.screenshot(path=artifacts_dir / "x.png")

    @pytest.mark.browser_locale("en-US")    # another locale for one test's page

`browser` is one headless Chromium for the whole session; `page` is a fresh
context and page per test, closed afterwards, with a screenshot saved to
test-artifacts/<test name>.png when the test fails.  Playwright's own
browser download is never used (no `playwright install`).

The Playwright sync API keeps its asyncio loop marked as *running* in the
main thread between calls, which would make `asyncio.run()` fail in every
later test of the session.  So the loop is only marked running during tests
that use these fixtures (and while the browser is closed at session end);
any other test sees no running loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeguard.bench.servers import CHROMIUM_ARGS
from tests.harness.proc import require_binary, servers_required

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 800}
LOCALE = "zh-CN"
BROWSER_FIXTURES = frozenset({"browser", "page"})
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


class _PlaywrightLoop:
    """Marks Playwright's loop as running only while browser code may call it."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def adopt(self) -> None:
        self.loop = asyncio._get_running_loop()

    def forget(self) -> None:
        self.detach()
        self.loop = None

    def attach(self) -> None:
        if self.loop is not None:
            asyncio._set_running_loop(self.loop)

    def detach(self) -> None:
        if self.loop is not None and asyncio._get_running_loop() is self.loop:
            asyncio._set_running_loop(None)


_LOOP = _PlaywrightLoop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser_locale(locale): the `page` fixture's locale instead of zh-CN")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    if BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
        _LOOP.attach()
    else:
        _LOOP.detach()
    try:
        return (yield)
    finally:
        _LOOP.detach()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        msg = "the playwright Python package is missing: pip install -e '.[dev]'"
        if servers_required():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return sync_playwright


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (created): screenshots and the like."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium (playwright.sync_api.Browser) for the session."""
    chromium = require_binary("chromium", "Debian: apt-get install chromium")
    playwright = _sync_playwright()().start()
    _LOOP.adopt()
    try:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
    except BaseException:
        playwright.stop()
        _LOOP.forget()
        raise
    try:
        yield browser
    finally:
        _LOOP.attach()
        try:
            browser.close()
        finally:
            playwright.stop()
            _LOOP.forget()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]


def _screenshot(page: Any, shot: Path) -> None:
    try:
        page.screenshot(path=str(shot), full_page=True)
    except Exception as e:  # the test may have closed the page: keep its own failure
        print(f"no screenshot of the failed test: {e}")
    else:
        print(f"screenshot of the failed test: {shot}")


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, artifacts_dir: Path) -> Iterator[Any]:
    """A new page in its own context; screenshot to test-artifacts/ when the test fails."""
    marker = request.node.get_closest_marker("browser_locale")
    locale = marker.args[0] if marker else LOCALE
    context = browser.new_context(viewport=VIEWPORT, locale=locale)
    try:
        page = context.new_page()
        yield page
        reports = request.node.stash.get(_REPORTS, {})
        if any(r.failed for r in reports.values()):
            _screenshot(page, artifacts_dir / f"{_safe_name(request.node.name)}.png")
    finally:
        context.close()
