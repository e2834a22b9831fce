"""CPU of ``StreamAccumulator.feed``: 20 MiB in 64 KiB reads, and one ordinary 13-event stream.

    PYTHONPATH=. .venv/bin/python bench/sse_feed.py
    PYTHONPATH=/path/to/older/checkout .venv/bin/python bench/sse_feed.py   # the same on another version

Cases: 20 MiB without a blank line (the event cap is lifted, so the scan itself is measured),
20 MiB of chat chunks framed with \\n\\n and with \\r\\n\\r\\n, and the per-stream cost of the bench
fake's answer (10 content chunks, a finish chunk, a usage chunk, [DONE]). Process CPU time, best of
three; not part of the test suite.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable

from app.gateway.sse import StreamAccumulator
from contracts import semconv as sc

READ = 64 * 1024
TOTAL = 20 * 1024 * 1024
BASE = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}


def accumulator() -> StreamAccumulator:
    extra = {"max_event_bytes": 1 << 40} if "max_event_bytes" in inspect.signature(StreamAccumulator).parameters else {}
    return StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=False, capture_content=True, **extra)


def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({**BASE, "choices": [choice]}).encode() + b"\n\n"


def best_of(runs: int, work: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def feed_in_reads(data: bytes) -> Callable[[], None]:
    def work() -> None:
        acc = accumulator()
        for i in range(0, len(data), READ):
            acc.feed(data[i:i + READ])
        acc.flush()
    return work


def one_stream(events: list[bytes], count: int) -> Callable[[], None]:
    def work() -> None:
        for _ in range(count):
            acc = accumulator()
            for event in events:
                acc.feed(event)
            acc.flush()
            acc.attributes()
    return work


def main() -> None:
    line = b"y" * 200 + b"\n"
    no_blank = b"data: " + line * (TOTAL // len(line))
    one = chunk({"content": "hello "})
    lf = one * (TOTAL // len(one))
    for name, data in (("20 MiB, no blank line", no_blank), ("20 MiB of chunks, \\n\\n", lf),
                       ("20 MiB of chunks, \\r\\n\\r\\n", lf.replace(b"\n", b"\r\n"))):
        print(f"{name:28s} {best_of(3, feed_in_reads(data)):7.3f} s CPU")
    events = [chunk({"content": f"word{i} "}) for i in range(10)] + [chunk({}, "stop")]
    events += [b"data: " + json.dumps({**BASE, "choices": [], "usage": {"prompt_tokens": 5}}).encode() + b"\n\n",
               b"data: [DONE]\n\n"]
    count = 20_000
    print(f"{'one 13-event stream':28s} {best_of(3, one_stream(events, count)) / count * 1e6:7.1f} us CPU")


if __name__ == "__main__":
    main()
