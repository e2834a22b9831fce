"""Delivery between the team router and the exporters: spool, retry, isolate, account.

``DeliveryManager.open(key, ...)`` gives a ``Destination`` whose ``submit(span)`` the router calls
from ``on_end``. Everything after that (encoding, the spool, batching, retries, dead letters)
happens off the event loop. See ``manager.py`` for the thread model, ``spool.py`` for the
file layout, ``fallback.py`` for what happens when the disk refuses writes and ``deadletter/``
for what becomes of refused spans: listed, replayed onto their queue, swept by age and count.
"""

from .codec import decode_span, encode_span
from .config import DeadLetter, DeliveryConfig, DestinationHealth, Selection, SpoolHealth
from .destination import Destination
from .manager import DeliveryManager

__all__ = [
    "DeadLetter",
    "DeliveryConfig",
    "DeliveryManager",
    "Destination",
    "DestinationHealth",
    "Selection",
    "SpoolHealth",
    "decode_span",
    "encode_span",
]
