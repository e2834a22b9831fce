"""The pass-through's pieces: the body sent, Anthropic's error as the client gets it, and the tee that
hands on Anthropic's events whole and in order (``app.dialects.messages_native``)."""

from __future__ import annotations

import json

import pytest

from app.dialects.messages_native import EventTee, is_anthropic_error, native_body, native_error
from app.errors import UpstreamInvalidResponse
from app.providers.anthropic import AnthropicStream

KEY = "sk-ant-api03-SecretKey0123456789abcdefXYZ"


def event(kind: str, **data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


START = event("message_start", message={"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}})
TEXT = event("content_block_delta", index=0, delta={"type": "text_delta", "text": "hi"})
SIGNED = event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "sig"})
ERROR = event("error", error={"type": "overloaded_error", "message": "Overloaded"})


def test_the_body_is_the_clients_with_the_model_replaced_and_metadata_cut_to_user_id() -> None:
    asked = {"model": "claude", "max_tokens": 9, "thinking": {"type": "adaptive"},
             "metadata": {"user_id": "u", "test": "t"}, "messages": [{"role": "user", "content": "x"}]}
    assert native_body(asked, "claude-haiku-4-5") == {**asked, "model": "claude-haiku-4-5",
                                                      "metadata": {"user_id": "u"}}
    assert "metadata" not in native_body({**asked, "metadata": {"test": "t"}}, "m")
    assert asked["metadata"] == {"user_id": "u", "test": "t"}  # the client's own body is left as it was


def test_an_error_keeps_anthropics_type_and_request_id_and_loses_the_key() -> None:
    body = json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": f"slow, {KEY}"},
                       "request_id": "req_1"}).encode()
    out = json.loads(native_error(429, body, (KEY,)))
    assert out["type"] == "error" and out["request_id"] == "req_1" and out["error"]["type"] == "rate_limit_error"
    assert KEY not in json.dumps(out) and out["error"]["message"].startswith("slow, ")
    assert json.loads(native_error(413, b"<html>too big</html>", ()))["error"] == {
        "type": "request_too_large", "message": "HTTP 413"}


def tee() -> EventTee:
    return EventTee(AnthropicStream(1, True, "claude"), is_anthropic_error)


def test_the_tee_hands_on_whole_events_in_order_however_the_network_cuts_them() -> None:
    stream, whole = tee(), START + TEXT + SIGNED
    handed, translated = b"", b""
    for i in range(0, len(whole), 7):
        translated += stream.feed(whole[i:i + 7])
        taken = stream.take()
        assert taken.endswith(b"\n\n") or not taken
        handed += taken
    assert handed + stream.rest() == whole and b'"content":"hi"' in translated


def test_the_tee_stops_before_anthropics_error_event() -> None:
    stream = tee()
    stream.feed(START + TEXT + ERROR[:10])
    assert stream.take() == START + TEXT
    stream.feed(ERROR[10:] + TEXT)
    assert stream.take() == b"" and stream.rest() == b""


def test_an_event_the_gateway_cannot_read_is_not_handed_on() -> None:
    stream = tee()
    stream.feed(START)
    with pytest.raises(UpstreamInvalidResponse):
        stream.feed(b"data: {not json\n\n")
    assert stream.take() == START and stream.feed(TEXT) == b"" and stream.rest() == b""


def test_crlf_framed_events_are_handed_on_whole_too() -> None:
    stream, whole = tee(), (START + TEXT).replace(b"\n", b"\r\n")
    stream.feed(whole[:-3])
    assert stream.take() == START.replace(b"\n", b"\r\n")
    stream.feed(whole[-3:])
    assert stream.take() == TEXT.replace(b"\n", b"\r\n") and stream.rest() == b""
