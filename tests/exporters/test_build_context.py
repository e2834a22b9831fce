"""BuildContext.for_api: one policy-checked context shared by every API-set destination."""

from pathlib import Path

import httpx
import pytest

from exporters.plugin import BuildContext


def test_for_api_is_shared_and_still_refuses_without_a_checked_client() -> None:
    with httpx.Client() as plain, httpx.Client() as checked:
        ctx = BuildContext(http_client=plain, span_log_path=Path("spans.jsonl"), api_http_client=checked)
        api = ctx.for_api()
        assert api is ctx.for_api() and api.http_client is checked and api.span_log_path == ctx.span_log_path
        assert ctx.http_client is plain
        bare = BuildContext(http_client=plain, span_log_path=Path("spans.jsonl"))
        for _ in range(2):  # a failure is not cached as a context
            with pytest.raises(ValueError, match="no policy-checked HTTP client"):
                bare.for_api()
