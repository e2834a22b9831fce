"""Memory of the gateway when an upstream sends far more than it should (issue #8's bounds).

An asyncio upstream answers every call with 100 MiB, chunked: JSON padding for a complete answer,
one endless SSE event for a stream. The gateway (CLI, one worker) must answer 502 naming
max_upstream_response_bytes, resp. end the stream with an error event, with its peak RSS (VmHWM)
bounded by the cap times the calls in flight.

    .venv/bin/python bench/upstream_bounds.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.process import gateway_process
from tests.support.upstream import closed_port

MIB = 1 << 20
CONFIG = """model_list:
  - model_name: big
    litellm_params: {{model: openai/big, api_base: 'http://127.0.0.1:{port}/v1', api_key: sk-bench}}
spangate_settings: {{data_dir: {data}}}
"""


async def answer_100_mib(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        stream = json.loads(await reader.readexactly(length)).get("stream")
        kind = b"text/event-stream" if stream else b"application/json"
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: %b\r\ntransfer-encoding: chunked\r\n\r\n" % kind)
        chunk = b"data: " + b"x" * (MIB - 6) if stream else b" " * MIB
        for _ in range(100):
            writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the gateway hung up at its cap: that is the point
    finally:
        writer.close()


def start_upstream() -> int:
    ports: list[int] = []

    async def serve() -> None:
        server = await asyncio.start_server(answer_100_mib, "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    while not ports:
        time.sleep(0.01)
    return ports[0]


def memory(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return f"RSS {int(fields['VmRSS'].split()[0]) // 1024} MB, peak {int(fields['VmHWM'].split()[0]) // 1024} MB"


def main() -> None:
    upstream = start_upstream()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(port=upstream, data=Path(tmp) / "data"))
        port = closed_port()
        with gateway_process(config, port) as proc:
            threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
            url = f"http://127.0.0.1:{port}/v1/chat/completions"

            def call(stream: bool) -> str:
                started = time.perf_counter()
                reply = httpx.post(url, timeout=120, json={"model": "big", "stream": stream,
                                                           "messages": [{"role": "user", "content": "x"}]})
                return f"{reply.status_code} in {time.perf_counter() - started:.2f}s: {reply.text[:110]!r}"

            print("idle:", memory(proc.pid))
            print("one complete answer:", call(False), "|", memory(proc.pid))
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(call, [False] * 4))
                print("four at once:", answers[-1], "|", memory(proc.pid))
            print("one stream:", call(True), "|", memory(proc.pid))


if __name__ == "__main__":
    main()
