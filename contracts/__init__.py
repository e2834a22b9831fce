"""Contracts shared by the gateway (``app``), the exporters and the delivery layer (``processors``).

Everything here is a name, a value or a small type, with no imports from the three packages that
use it, so their imports point down to this one and never up or across: the attribute names of a
gateway span (``semconv``) and what an exporter reports when an export fails (``failures``).
"""
