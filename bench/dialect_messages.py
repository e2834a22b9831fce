"""CPU the Messages dialect adds to a call: its translations alone, timed in process.

    .venv/bin/python bench/dialect_messages.py

A ``/v1/messages`` call costs what a chat call costs plus this: the request to chat, the answer (or
each chunk of a stream) back, and for streams the relay's re-decoding of each chunk it wrote.
The gateway-level comparison (``bench/run.py`` with a messages scenario) is still to be written.
"""

from __future__ import annotations

import timeit
from typing import Any

import msgspec

from app.dialects.messages import MessagesDialect

REQUEST = {"model": "gpt", "max_tokens": 100, "system": "Be brief.",
           "messages": [{"role": "user", "content": "Hello there, how are you?"}]}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "prompt_tokens_details": {"cached_tokens": 2}}
ANSWER = {"id": "chatcmpl-1", "model": "gpt-4o-mini", "usage": USAGE,
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Fine."}}]}
# The bench's fake upstream streams 10 content chunks, a finish chunk and a usage chunk.
_HEAD = {"id": "c", "model": "m"}
CHUNKS = [msgspec.json.encode({**_HEAD, "choices": [{"index": 0, "delta": {"content": " w"}}]})] * 10
CHUNKS += [msgspec.json.encode({**_HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
           msgspec.json.encode({**_HEAD, "choices": [], "usage": USAGE})]


def plain(dialect: MessagesDialect) -> None:
    dialect.to_chat(REQUEST)
    msgspec.json.encode(dialect.answer(ANSWER, REQUEST))


def streamed(dialect: MessagesDialect) -> None:
    dialect.to_chat({**REQUEST, "stream": True})
    stream: Any = dialect.stream(REQUEST)
    for raw in CHUNKS:
        stream.feed(msgspec.json.decode(raw))
    stream.close()


def main() -> None:
    dialect = MessagesDialect()
    for name, run in (("plain", plain), ("stream, 12 chunks", streamed)):
        number = 20_000
        best = min(timeit.repeat(lambda run=run: run(dialect), number=number, repeat=5)) / number
        print(f"{name:>18}: {best * 1e6:6.1f} us per call")


if __name__ == "__main__":
    main()
