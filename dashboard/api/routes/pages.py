"""Shared by the HTML pages: templates and the page's language."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from dashboard import history_labels, labels

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
# _nav.html names the history and reports links in the page's language
TEMPLATES.env.globals["history_nav"] = history_labels.nav
# every page's header: "name · role", or the role alone (labels.who)
TEMPLATES.env.globals["who"] = labels.who


def lang_of(request: Request) -> str:
    return labels.pick(request.cookies.get(labels.COOKIE))
