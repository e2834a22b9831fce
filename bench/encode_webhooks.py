"""Encoder cost per span of the generic webhook and Athina, on a realistic captured chat span.

    PYTHONPATH=. python bench/encode_webhooks.py

Prints microseconds per span for each encoder (best of 5 runs of 2,000 spans), next to Langfuse's
OTLP encoder as the yardstick every request already pays when Langfuse is configured.
"""

from __future__ import annotations

import timeit

from contracts import semconv as sc
from exporters.athina.encode import encode_athina
from exporters.generic.encode import encode_json_array, encode_ndjson, encode_single
from exporters.langfuse.encode import encode_langfuse
from tests.support.readable_spans import span

ATTRS = {
    sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: sc.PROVIDER_OPENAI, sc.CALL_TYPE: "acompletion",
    sc.REQUEST_MODEL: "gpt-4o", sc.RESPONSE_MODEL: "gpt-4o-2024-08-06", sc.RESPONSE_ID: "chatcmpl-abc123",
    sc.REQUEST_TEMPERATURE: 0.2, sc.REQUEST_MAX_TOKENS: 256, sc.END_USER: "user-42",
    sc.USAGE_INPUT_TOKENS: 420, sc.USAGE_OUTPUT_TOKENS: 96, sc.USAGE_COST: 0.00201,
    sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "search", sc.KEY_ALIAS: "prod", sc.KEY_HASH: "9f86d081884c7d65",
    sc.SYSTEM_INSTRUCTIONS: '[{"type":"text","content":"You are a helpful assistant."}]',
    sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"' + "lorem ipsum " * 40 + '"}]}]',
    sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"' + "dolor sit " * 30
                        + '"}],"finish_reason":"stop"}]',
    sc.metadata_key("generation_name"): "answer", sc.metadata_key("session_id"): "s-1",
    sc.metadata_key("tags"): ("prod", "search"),
}
BATCH = [span(ATTRS, span_id=n + 1) for n in range(2000)]


def per_span_us(encode_batch) -> float:
    best = min(timeit.repeat(lambda: encode_batch(BATCH), number=1, repeat=5))
    return best / len(BATCH) * 1e6


def main() -> None:
    cases = {
        "generic single (one body per span)": lambda spans: [encode_single(s) for s in spans],
        "generic json_array": encode_json_array,
        "generic ndjson": encode_ndjson,
        "athina (one body per span)": lambda spans: [encode_athina(s) for s in spans],
        "langfuse OTLP (yardstick)": encode_langfuse,
    }
    for name, encode in cases.items():
        print(f"{name:38s} {per_span_us(encode):7.1f} us/span")


if __name__ == "__main__":
    main()
