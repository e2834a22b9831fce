"""Content moderation of ``/v1/messages`` calls: the input before the call, the output of plain and
streamed answers (the relay moderates OpenAI chunks; the dialect writes what passed, and the block as
Anthropic's ``error`` event). The stand-ins and config are the chat moderation tests' own."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from contracts import semconv as sc
from tests.e2e.gateway.test_moderation_e2e import IN_MARK, config, cs, gateway, span_of, upstream
from tests.support.content_safety import ContentSafetyStandIn
from tests.support.upstream import FakeOpenAI

__all__ = ["cs", "upstream"]  # the fixtures, imported for pytest


def ask(sdk: anthropic.Anthropic, text: str, tag: str) -> anthropic.types.Message:
    return sdk.messages.create(model="gpt", max_tokens=50, messages=[{"role": "user", "content": text}],
                               extra_body={"metadata": {"test": tag}})


@pytest.mark.parametrize("mode", ["window", "end"])
def test_messages_calls_are_moderated_in_and_out_streams_included(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn, mode: str) -> None:
    with gateway(tmp_path, config(upstream, cs, stream_mode=mode, stream_window_chars=8)) as gw, \
            anthropic.Anthropic(base_url=gw.base_url, api_key="anything", max_retries=0) as sdk:
        with pytest.raises(anthropic.BadRequestError) as blocked_in:
            ask(sdk, f"please {IN_MARK}", "m-in")
        with pytest.raises(anthropic.BadRequestError) as blocked_out:
            ask(sdk, "OUT-MARK-77", "m-out")
        with sdk.messages.stream(model="gpt", max_tokens=50, messages=[{"role": "user", "content": "a story"}]) as ok:
            clean = "".join(ok.text_stream)
        received: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as blocked_stream, \
                sdk.messages.stream(model="gpt", max_tokens=50, extra_body={"metadata": {"test": "m-stream"}},
                                    messages=[{"role": "user", "content": "OUT-MARK-77 one two three"}]) as bad:
            received.extend(bad.text_stream)
        spans = {tag: span_of(gw, tag)["attributes"] for tag in ("m-in", "m-out", "m-stream")}
    assert blocked_in.value.status_code == 400 and IN_MARK not in str(blocked_in.value.body)
    assert blocked_in.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "moderation" in blocked_out.value.body["error"]["message"]  # type: ignore[index]
    assert clean == "fake says: a story"
    assert blocked_stream.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    if mode == "window":  # held back: nothing of the flagged window reached the client
        assert "OUT-MARK" not in "".join(received)
    assert {tag: (a[sc.OPERATION_NAME], a[sc.ERROR_TYPE], a[sc.MODERATION_SOURCE]) for tag, a in spans.items()} == {
        "m-in": ("chat", "moderation_blocked", "input"), "m-out": ("chat", "moderation_blocked", "output"),
        "m-stream": ("chat", "moderation_blocked", "output")}
    assert len(upstream.requests) == 3  # the blocked input never reached it
