"""The openmeter encoder's CPU cost per span: spans -> CloudEvents -> JSON batch bytes.

    python bench/encode_openmeter.py [--batch 512] [--repeat 7]

The span carries what a real chat span holds (GenAI attributes, team, key alias and hash, metadata,
captured messages), since the encoder reads only a few of them and its cost is mostly the rest.
"""

from __future__ import annotations

import argparse
import timeit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from contracts import semconv as sc
from exporters.openmeter import encode_openmeter, openmeter_events

START = 1_767_225_600_000_000_000
ATTRIBUTES = {
    sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: sc.PROVIDER_OPENAI, sc.REQUEST_MODEL: "gpt-4o-mini",
    sc.SERVER_ADDRESS: "api.openai.com", sc.SERVER_PORT: 443, sc.CALL_TYPE: "completion", sc.MODEL_GROUP: "gpt-4o-mini",
    sc.TEAM_ID: "team-search", sc.TEAM_ALIAS: "search", sc.KEY_ALIAS: "ci", sc.KEY_HASH: "9f86d081884c7d65" * 4,
    sc.END_USER: "customer-42", sc.metadata_key("generation_name"): "rerank", sc.metadata_key("tags"): '["a","b"]',
    sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"' + "x" * 400 + '"}]}]',
    sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"' + "y" * 400 + '"}]}]',
    sc.RESPONSE_ID: "chatcmpl-abc123", sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    sc.RESPONSE_FINISH_REASONS: ("stop",), sc.USAGE_INPUT_TOKENS: 120, sc.USAGE_OUTPUT_TOKENS: 30,
    sc.USAGE_COST: 0.0000378,
}


def spans(count: int) -> list[ReadableSpan]:
    return [ReadableSpan(name="chat gpt-4o-mini", context=SpanContext(0xABC, i + 1, False, TraceFlags(1)),
                         resource=Resource({"service.name": "spangate"}), attributes=ATTRIBUTES,
                         kind=SpanKind.CLIENT, status=Status(StatusCode.OK), start_time=START,
                         end_time=START + 1_250_000_000) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    batch = spans(args.batch)
    timer = timeit.Timer(lambda: encode_openmeter(openmeter_events(batch, "spangate_tokens")))
    loops, _ = timer.autorange()
    best = min(timer.repeat(repeat=args.repeat, number=loops)) / loops
    size = len(encode_openmeter(openmeter_events(batch, "spangate_tokens")))
    print(f"openmeter encode: {best / args.batch * 1e6:.2f} us per span (batch of {args.batch}, best of "
          f"{args.repeat}x{loops}); {size / args.batch:.0f} bytes per event")


if __name__ == "__main__":
    main()
