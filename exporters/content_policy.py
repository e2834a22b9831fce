"""A destination's own content policy: ``message_logging: full | redacted | none`` on its callback entry.

A call is captured once for every destination; a destination whose entry asks for less gets its own
copy of each span with the content attributes rewritten, in its export path (a delivery thread, never
the request path): ``redacted`` keeps each message's role (and finish reason) with its text replaced
by ``redacted-by-spangate``, as LiteLLM's ``turn_off_message_logging`` redacts; ``none`` removes the
content attributes, as if they had never been captured. Both drop the ``raw_request`` metadata (the
curl command carries the request body). LiteLLM's ``turn_off_message_logging: true`` on an entry
means ``redacted``; ``message_logging``, when given, wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts import semconv as sc
from contracts.failures import ExportFailure

MESSAGE_LOGGING = "message_logging"  # the entry var
TURN_OFF_MESSAGE_LOGGING = "turn_off_message_logging"  # LiteLLM's spelling of it, as a var
POLICY_VARS = (MESSAGE_LOGGING, TURN_OFF_MESSAGE_LOGGING)  # a policy, not a destination setting
REDACTED = "redacted-by-spangate"
_MESSAGES = (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES)
_CONTENT = (*_MESSAGES, sc.SYSTEM_INSTRUCTIONS)
_RAW_REQUEST = sc.metadata_key("raw_request")  # app.calls.span writes it under this name


class MessageLogging(StrEnum):
    FULL = "full"
    REDACTED = "redacted"
    NONE = "none"


def message_logging(entry_vars: Mapping[str, Any]) -> MessageLogging:
    """The policy an entry's vars ask for; ``ValueError`` naming the var when it is not one."""
    raw = entry_vars.get(MESSAGE_LOGGING)
    if raw is not None:
        try:
            return MessageLogging(raw)
        except ValueError:
            raise ValueError(f"{MESSAGE_LOGGING} must be one of full, redacted, none; got {raw!r}") from None
    turn_off = entry_vars.get(TURN_OFF_MESSAGE_LOGGING)
    if turn_off is not None and not isinstance(turn_off, bool):
        raise ValueError(f"{TURN_OFF_MESSAGE_LOGGING} must be true or false")
    return MessageLogging.REDACTED if turn_off else MessageLogging.FULL


def with_content_policy(exporter: SpanExporter, policy: MessageLogging) -> SpanExporter:
    return exporter if policy is MessageLogging.FULL else ContentPolicyExporter(exporter, policy)


class ContentPolicyExporter(SpanExporter):
    """Exports rewritten copies; the spans in the queue (and the other destinations') stay whole."""

    def __init__(self, inner: SpanExporter, policy: MessageLogging) -> None:
        self._inner, self.policy = inner, policy

    @property
    def last_failure(self) -> ExportFailure | None:  # what the delivery layer reads after a FAILURE
        return getattr(self._inner, "last_failure", None)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([stripped(span, self.policy) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def stripped(span: ReadableSpan, policy: MessageLogging) -> ReadableSpan:
    attrs = span.attributes or {}
    if not any(k in attrs for k in (*_CONTENT, _RAW_REQUEST)):
        return span  # the upstream child span, a call captured without content: nothing to copy
    kept = {k: v for k, v in attrs.items() if k not in _CONTENT and k != _RAW_REQUEST}
    if policy is MessageLogging.REDACTED:
        kept.update({k: _redacted(k, attrs[k]) for k in _CONTENT if k in attrs})
    return ReadableSpan(name=span.name, context=span.context, parent=span.parent, resource=span.resource,
                        attributes=kept, events=span.events, links=span.links, kind=span.kind,
                        instrumentation_scope=span.instrumentation_scope, status=span.status,
                        start_time=span.start_time, end_time=span.end_time)


def _redacted(key: str, value: Any) -> str:
    """The same JSON shape with every text replaced, so a destination still shows who said something."""
    part = [{"type": "text", "content": REDACTED}]
    if key not in _MESSAGES:
        return json.dumps(part)
    try:
        messages = json.loads(value)
    except (TypeError, ValueError):
        messages = None
    if not isinstance(messages, list):
        return json.dumps([{"role": "user" if key == sc.INPUT_MESSAGES else "assistant", "parts": part}])
    return json.dumps([_redacted_message(m, part) for m in messages])


def _redacted_message(message: Any, part: list[dict[str, str]]) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {"role": "user", "parts": part}
    out = {"role": message.get("role", "user"), "parts": part}
    if "finish_reason" in message:
        out["finish_reason"] = message["finish_reason"]
    return out
