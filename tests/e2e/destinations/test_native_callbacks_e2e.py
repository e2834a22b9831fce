"""A user's own SpanExporter and SpanProcessor named ``module.attribute``: real server, official client.

They receive the gateway's spans from the delivery layer (a delivery thread, never the request's),
and show in ``/health/destinations`` like the built-in destinations.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import httpx
from openai import OpenAI
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult

from app.litellm.destinations import ProcessorSpanExporter
from app.litellm.loader import load_callback
from tests.support.gateway import running_gateway
from tests.support.readable_spans import span

MASTER_KEY = "sk-master-0123456789abcdef"
OBJECTS = """
import threading

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class ListExporter(SpanExporter):
    def __init__(self):
        self.spans = []
        self.threads = set()
        self.arrived = threading.Event()

    def export(self, spans):
        self.threads.add(threading.current_thread().name)
        self.spans.extend(spans)
        self.arrived.set()
        return SpanExportResult.SUCCESS


class ListProcessor(SpanProcessor):
    def __init__(self):
        self.ended = []
        self.threads = set()
        self.arrived = threading.Event()

    def on_end(self, span):
        self.threads.add(threading.current_thread().name)
        self.ended.append(span)
        self.arrived.set()


exporter = ListExporter()
processor = ListProcessor()
"""


def test_users_span_exporter_and_processor_receive_the_gateways_spans(tmp_path: Path) -> None:
    (tmp_path / "my_otel.py").write_text(textwrap.dedent(OBJECTS))
    config = {"model_list": [{"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}}],
              "litellm_settings": {"callbacks": ["my_otel.exporter"], "success_callback": ["my_otel.processor"]},
              "general_settings": {"master_key": MASTER_KEY}}
    with running_gateway(config, data_dir=tmp_path) as gw:
        exporter = load_callback("my_otel.exporter", tmp_path).obj
        processor = load_callback("my_otel.processor", tmp_path).obj
        with OpenAI(base_url=gw.openai_base_url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
            reply = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        assert exporter.arrived.wait(10) and processor.arrived.wait(10)
        health = httpx.get(f"{gw.base_url}/health/destinations", timeout=10,
                           headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()["destinations"]
    keys = {entry["key"] for entry in health}
    assert {"global/my_otel.exporter", "global/my_otel.processor"} <= keys
    for received in (exporter.spans, processor.ended):
        chats = [s for s in received if s.attributes.get("gen_ai.operation.name") == "chat"]
        assert len(chats) == 1 and chats[0].attributes["gen_ai.request.model"] == "mock-gpt"
    assert threading.main_thread().name not in exporter.threads | processor.threads
    assert not any("spangate-test-server" in name for name in exporter.threads | processor.threads)


def test_a_processor_whose_on_end_raises_is_a_counted_permanent_failure() -> None:
    class Failing(SpanProcessor):
        def __init__(self) -> None:
            self.seen = 0

        def on_end(self, span: object) -> None:
            self.seen += 1
            if self.seen == 1:
                raise ValueError("bug in on_end")

    processor = Failing()
    exporter = ProcessorSpanExporter(processor, "my_otel.failing")
    assert exporter.export([span({}), span({})]) == SpanExportResult.FAILURE
    assert processor.seen == 2  # one span's error does not keep the others from it
    assert exporter.last_failure is not None and not exporter.last_failure.retryable
    assert exporter.export([span({})]) == SpanExportResult.SUCCESS and exporter.last_failure is None
