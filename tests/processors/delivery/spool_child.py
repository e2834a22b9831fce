"""Child process of the kill -9 test: submits spans steadily and prints how many are spooled.

Run as ``python spool_child.py SPOOL_DIR SINK_URL`` with the repository on PYTHONPATH. Spans are
submitted in id order and spooled in that order, so a printed count ``k`` means ids 1..k are in
the spool.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from processors.delivery import DeliveryConfig, DeliveryManager
from tests.processors.delivery.support import ids_exporter, make_span


def main(spool_dir: str, url: str) -> None:
    manager = DeliveryManager(DeliveryConfig(spool_dir=Path(spool_dir), batch_delay=0.02, max_batch=100))
    manager.start()
    dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: ids_exporter(url))
    i = 0
    while True:
        for _ in range(50):
            i += 1
            dest.submit(make_span(i))
        time.sleep(0.01)
        print(manager.health()[0].spooled, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
