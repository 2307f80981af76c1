"""422 answers that say which item of a batch is wrong and why.

FastAPI's default lists pydantic errors by location; a gateway operator
needs "events[3] (hg-b-0001 seq 7): type 'smoke' is not an alarm type" and
the assurance that nothing of the batch was stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_LISTED = 20


def _item_of(body: Any, loc: tuple[Any, ...]) -> dict[str, Any] | None:
    """For a location inside body.events[i], the item's index, device and seq."""
    if len(loc) < 3 or loc[:2] != ("body", "events") or not isinstance(loc[2], int):
        return None
    index = loc[2]
    item: Any = None
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        events = body["events"]
        item = events[index] if 0 <= index < len(events) else None
    got = item if isinstance(item, dict) else {}
    return {"index": index, "device": got.get("device"), "seq": got.get("seq")}


def _describe(err: dict[str, Any], body: Any) -> dict[str, Any]:
    loc = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    item = _item_of(body, loc)
    if item is None:
        where = ".".join(str(p) for p in loc[1:] if p != "body") or "body"
        return {"where": where, "field": where, "message": msg}
    field = ".".join(str(p) for p in loc[3:]) or None
    where = f"events[{item['index']}]"
    if item["device"] is not None or item["seq"] is not None:
        where += f" ({item['device']} seq {item['seq']})"
    return {**item, "where": where, "field": field, "message": msg}


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_describe(dict(e), exc.body) for e in exc.errors()]
    lines = [
        f"{p['where']}: {p['field'] + ': ' if p.get('field') and 'index' in p else ''}"
        f"{p['message']}"
        for p in problems[:MAX_LISTED]
    ]
    more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
    stored = "; nothing was stored" if request.method == "POST" else ""
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": f"invalid request{stored}: " + "; ".join(lines) + more,
            "errors": problems,
        },
    )
