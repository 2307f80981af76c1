"""Shared by the HTML pages: templates and the page's language."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from dashboard import labels

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")


def lang_of(request: Request) -> str:
    return labels.pick(request.cookies.get(labels.COOKIE))
