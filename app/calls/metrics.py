"""The GenAI client metrics a call records when it ends, plus spend per team."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.metrics import Meter

from contracts import semconv as sc

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)


class GenAIMetrics:
    """The GenAI client metrics of the semantic conventions, plus spend per team."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_histogram(sc.METRIC_TOKEN_USAGE, unit="{token}",
                                             explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.duration = meter.create_histogram(sc.METRIC_OPERATION_DURATION, unit="s",
                                               explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.first_chunk = meter.create_histogram(sc.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
                                                  explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.spend = meter.create_counter("spangate.spend", unit="USD")

    def record(self, labels: Mapping[str, Any], attrs: Mapping[str, Any], duration: float,
               ttfc: float | None) -> None:
        """``labels`` from the call record (``app.calls.span.metric_labels``); tokens and cost from
        the attributes the call ended with."""
        self.duration.record(duration, labels)
        if ttfc is not None:
            self.first_chunk.record(ttfc, labels)
        for key, kind in ((sc.USAGE_INPUT_TOKENS, "input"), (sc.USAGE_OUTPUT_TOKENS, "output")):
            if key in attrs:
                self.tokens.record(attrs[key], {**labels, sc.TOKEN_TYPE: kind})
        if sc.USAGE_COST in attrs:
            self.spend.add(attrs[sc.USAGE_COST], labels)

