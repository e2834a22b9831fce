"""Contracts shared by the gateway (``app``), the exporters and the delivery layer (``processors``).

Everything here is a name, a value, a small type or a wire format, with no imports from the three
packages that use it, so their imports point down to this one and never up or across: the
attribute names of a gateway span (``semconv``), what an exporter reports when an export fails
(``failures``), and the HTTP/1.1 wire format both hand-written transports speak, the gateway's
upstream client and the exporters' one: response framing (``http11``) and the request head
(``request_head``).
"""
