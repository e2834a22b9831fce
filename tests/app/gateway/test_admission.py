"""What the proxy decides before a body is read: who calls, what the call may log, a body over the limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.calls.caller import Caller
from app.calls.pricing import PriceBook
from app.errors import PayloadTooLarge
from app.gateway.proxy import TOO_LARGE, Admission, CallContext, ProxyService
from app.providers import ModelRouter
from contracts import semconv as sc


@dataclass
class Keys:
    caller: Caller
    tokens: list[str | None] = field(default_factory=list)

    def authenticate(self, token: str | None) -> Caller:
        self.tokens.append(token)
        return self.caller


@dataclass
class Teams:
    logs_content: dict[str | None, bool]

    def capture_content(self, team_id: str | None) -> bool:
        return self.logs_content[team_id]


def service(admission: Any = None) -> tuple[ProxyService, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ProxyService(ModelRouter({}), provider.get_tracer("test"), PriceBook(), None, admission=admission), exporter


@pytest.mark.parametrize(("key_logs", "team_logs", "logged"), [(True, True, True), (True, False, False),
                                                               (False, True, False)])
def test_a_call_logs_content_only_when_its_key_and_its_team_both_allow_it(key_logs: bool, team_logs: bool,
                                                                         logged: bool) -> None:
    keys = Keys(Caller(team_id="t", capture_content=key_logs))
    proxy, _ = service(Admission(keys, Teams({"t": team_logs})))  # type: ignore[arg-type]
    ctx = proxy.admit({"authorization": "Bearer sk-1"}, "10.0.0.2", "/v1/chat/completions")
    assert (ctx.caller, ctx.capture_content, ctx.client_ip, ctx.path) == (keys.caller, logged, "10.0.0.2",
                                                                          "/v1/chat/completions")
    assert keys.tokens == ["sk-1"]


def test_a_service_built_without_admission_says_so() -> None:
    proxy, _ = service()
    with pytest.raises(RuntimeError, match="without an Admission"):
        proxy.admit({}, None, "/v1/embeddings")


def test_a_body_over_the_limit_is_a_failed_call_with_its_own_span() -> None:
    proxy, exporter = service()
    ctx = CallContext(caller=Caller(team_id="t"), headers={}, client_ip=None, capture_content=True)
    error = proxy.too_large(sc.OP_CHAT, ctx)
    assert isinstance(error, PayloadTooLarge)
    assert error.message == TOO_LARGE
    (span,) = exporter.get_finished_spans()
    assert (span.name, span.status.status_code, span.attributes[sc.HTTP_STATUS_CODE]) == ("chat", StatusCode.ERROR, 413)
    # plain strings, as before operations were an enum: exporters get what they always got
    assert (type(span.name), type(span.attributes[sc.OPERATION_NAME])) == (str, str)
