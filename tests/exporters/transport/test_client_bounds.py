"""What a destination controls on the wire and the export transport bounds: the size of the answer's
head and how long the whole exchange may take. Raw-socket destinations on loopback."""

from __future__ import annotations

import httpx
import pytest

from exporters.transport.client import ExportClient
from exporters.transport.http11 import ExportTransport
from tests.support.raw_upstream import RawServer, fixed, huge_head, trickle

MAX_RESPONSE_HEAD = 64 * 1024  # the documented cap (README, Security)


def test_an_answer_head_over_the_cap_fails_the_export_and_drops_the_connection() -> None:
    with RawServer(huge_head(16 << 20, b"Content-Length: 2\r\n\r\n{}")) as sink, \
            ExportClient(timeout=5.0, trust_env=False) as client:
        with pytest.raises(httpx.RemoteProtocolError, match=f"larger than {MAX_RESPONSE_HEAD} bytes"):
            client.post_answer(sink.url + "/ingest", content=b"{}")
        sink.wait_dropped(1)
        sink.script = fixed(200, b"{}")
        assert client.post_answer(sink.url + "/ingest", content=b"{}").status_code == 200


def test_a_trickled_answer_ends_at_the_exchange_deadline_though_every_read_is_quick() -> None:
    transport = ExportTransport(deadline=0.3)
    with (RawServer(trickle(b" " * 98 + b"{}", every=0.05)) as sink,
          ExportClient(timeout=5.0, trust_env=False, transport=transport) as client,
          pytest.raises(httpx.ReadTimeout, match=r"did not end within 0\.3s \(the export's deadline\)")):
        client.post_answer(sink.url + "/ingest", content=b"{}")
