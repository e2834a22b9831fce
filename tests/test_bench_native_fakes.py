"""The providers bench's fakes (``bench/native_fakes.py``) answer as the real APIs do, so its figures
never come from a broken fake: Anthropic's and Google's SDKs read them, plain and streamed, and
botocore's own parser reads the Bedrock event stream. The fakes run as the bench runs them: a child
process on a free loopback port."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from botocore.eventstream import EventStreamBuffer
from google import genai

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "native_fakes.py"
TEXT = "This is a fast fake reply from the bench upstream."


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with subprocess.Popen([sys.executable, str(SCRIPT), "--port", "0"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.startswith("READY "), line
            yield f"http://127.0.0.1:{json.loads(line.removeprefix('READY '))['port']}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_anthropic_sdk_reads_the_message_and_the_stream(url: str) -> None:
    with anthropic.Anthropic(api_key="k", base_url=url, max_retries=0) as client:
        message = client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                         messages=[{"role": "user", "content": "hi"}])
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=50,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert message.content[0].text == TEXT and message.usage.input_tokens == 42
    assert streamed == TEXT and final.usage.output_tokens == 10 and final.stop_reason == "end_turn"


def test_google_genai_reads_the_answer_and_the_stream(url: str) -> None:
    client = genai.Client(api_key="k", http_options={"base_url": url, "api_version": "v1beta"})  # the gateway's
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    pieces = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert answer.text == TEXT and answer.usage_metadata.total_token_count == 52
    assert "".join(p.text for p in pieces) == TEXT and pieces[-1].usage_metadata.candidates_token_count == 10


def test_botocore_reads_the_bedrock_event_stream(url: str) -> None:
    plain = httpx.post(f"{url}/model/m/converse", json={"messages": []}).json()
    assert plain["output"]["message"]["content"] == [{"text": TEXT}] and plain["stopReason"] == "end_turn"
    buffer = EventStreamBuffer()
    buffer.add_data(httpx.post(f"{url}/model/m/converse-stream", json={"messages": []}).content)
    events = [(m.headers[":event-type"], json.loads(m.payload)) for m in buffer]
    assert "".join(e["delta"]["text"] for kind, e in events if kind == "contentBlockDelta") == TEXT
    assert events[-1] == ("metadata", {"usage": {"inputTokens": 42, "outputTokens": 10, "totalTokens": 52},
                                       "metrics": {"latencyMs": 1}})
