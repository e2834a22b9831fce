"""``GET /spend/logs``: LiteLLM's spend log, one row per call, read from the store's spend log.

Filters as LiteLLM names them: ``api_key`` (a key or its hash), ``team_id``, ``user_id``,
``request_id``, ``start_date`` and ``end_date`` (each alone or both), on the call's start. A date
``YYYY-MM-DD`` is that UTC day: ``start_date`` from its first instant, ``end_date`` through its last.
(LiteLLM reads ``end_date`` as that day's midnight, so its last day comes back empty: BerriAI/litellm
#40216; a script that meant the whole day gets it here.) An ISO time (``2026-01-02T15:04:05Z``, a
naive one is UTC) is that instant, both ends inclusive. Rows come oldest first, ``page_size`` at a
time (1000 at most), and always as rows: LiteLLM's ``summarize`` per-day form is not produced.

Who sees what is the access table's: the master key every row; a team admin names its own
``team_id`` and gets that team's rows only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from litestar import Controller, get
from litestar.params import FromQuery

from app.api.admin.access import as_hash
from app.api.admin.context import Admin
from app.calls.limits import nanos_to_usd
from app.errors import InvalidRequest
from app.store import SpendRow

MAX_PAGE_SIZE = 1000


class SpendController(Controller):
    path = "/spend"
    tags = ["budget & spend tracking"]

    @get("/logs")
    async def spend_logs(self, admin: Admin, api_key: FromQuery[str | None] = None,
                         team_id: FromQuery[str | None] = None, user_id: FromQuery[str | None] = None,
                         request_id: FromQuery[str | None] = None, start_date: FromQuery[str | None] = None,
                         end_date: FromQuery[str | None] = None, page: FromQuery[int] = 1,
                         page_size: FromQuery[int] = MAX_PAGE_SIZE) -> list[dict[str, Any]]:
        if page < 1:
            raise InvalidRequest("page must be 1 or more", param="page", code="invalid_value")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"page_size must be from 1 to {MAX_PAGE_SIZE}", param="page_size",
                                 code="invalid_value")
        start = moment(start_date, "start_date", end=False) if start_date else None
        end = moment(end_date, "end_date", end=True) if end_date else None
        if start is not None and end is not None and end <= start:
            raise InvalidRequest("end_date is before start_date", param="end_date", code="invalid_value")
        rows = await admin.store.spend_logs(token_hash=as_hash(api_key) if api_key else None, team_id=team_id,
                                            user_id=user_id, request_id=request_id, start=start, end=end,
                                            offset=(page - 1) * page_size, limit=page_size)
        return [spend_row_json(row) for row in rows]


def moment(text: str, param: str, *, end: bool) -> datetime | None:
    """Where the filter starts (inclusive) or ends (exclusive, the instant after the last one taken);
    None: no bound (an end past the last date there is)."""
    try:
        day = date.fromisoformat(text) if len(text) <= 10 else None
        if day is not None:
            if end and day == date.max:
                return None
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(text)
        parsed = (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed).astimezone(UTC)
        return parsed + timedelta(microseconds=1) if end else parsed
    except OverflowError:  # an offset that moves year 1 or 9999 out of range in UTC
        raise InvalidRequest(f"{param} {text[:40]!r} is out of the range of dates", param=param,
                             code="invalid_value") from None
    except ValueError:
        raise InvalidRequest(f"{param} {text[:40]!r} is not a date (YYYY-MM-DD) nor an ISO time "
                             "(YYYY-MM-DDTHH:MM:SS, UTC unless it names an offset)", param=param,
                             code="invalid_value") from None


def spend_row_json(row: SpendRow) -> dict[str, Any]:
    """LiteLLM's field names; ``api_key`` is the key's hash (null for the master key or no key)."""
    return {"request_id": row.request_id, "call_type": row.call_type, "api_key": row.token_hash,
            "spend": nanos_to_usd(row.spend_nanos), "total_tokens": row.total_tokens,
            "prompt_tokens": row.prompt_tokens, "completion_tokens": row.completion_tokens,
            "startTime": row.start_time.isoformat(), "endTime": row.end_time.isoformat(), "model": row.model,
            "user": row.user_id, "team_id": row.team_id, "status": row.status}


def spend_routes() -> list[type[Controller]]:
    """Served under the admin API's access guard (``app.api.admin.admin_routes``)."""
    return [SpendController]
