"""The GenAI client metrics a call records when it ends, plus spend per team.

Names as semantic-conventions-genai has them now (``contracts/semconv.py``): inference calls record
``gen_ai.client.inference.*`` (duration, time to first chunk, tokens per operation as histograms and
token usage as counters by category), embeddings ``gen_ai.client.embeddings.*``. With ``legacy`` the
v1.41 metrics are recorded too, so dashboards on ``gen_ai.client.token.usage`` and
``gen_ai.client.operation.duration`` keep working while they move (``spangate_settings.
legacy_genai_metrics``, on by default for this release).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.metrics import Meter

from contracts import semconv as sc

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
# Usage counters by the span attribute that holds their count. OpenAI's usage gives totals only, so
# every count is modality "unknown": the partition stays complete (the conventions' design note).
_USAGE = ((sc.USAGE_INPUT_TOKENS, sc.METRIC_INFERENCE_USAGE_INPUT_TOKENS),
          (sc.USAGE_OUTPUT_TOKENS, sc.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS),
          (sc.USAGE_CACHE_READ_INPUT_TOKENS, sc.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS),
          (sc.USAGE_CACHE_WRITE_INPUT_TOKENS, sc.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS),
          (sc.USAGE_REASONING_OUTPUT_TOKENS, sc.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS))


class GenAIMetrics:
    """The GenAI client metrics of the semantic conventions, plus spend per team."""

    def __init__(self, meter: Meter, *, legacy: bool = True) -> None:
        self.duration = _seconds(meter, sc.METRIC_INFERENCE_DURATION)
        self.first_chunk = _seconds(meter, sc.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK)
        self.input_tokens = _tokens(meter, sc.METRIC_INFERENCE_OPERATION_INPUT_TOKENS)
        self.output_tokens = _tokens(meter, sc.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS)
        self.usage = {attr: meter.create_counter(name, unit="{token}") for attr, name in _USAGE}
        self.embeddings_duration = _seconds(meter, sc.METRIC_EMBEDDINGS_DURATION)
        self.embeddings_tokens = _tokens(meter, sc.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS)
        self.legacy = _LegacyMetrics(meter) if legacy else None
        self.spend = meter.create_counter("spangate.spend", unit="USD")

    def record(self, labels: Mapping[str, Any], attrs: Mapping[str, Any], duration: float,
               ttfc: float | None) -> None:
        """``labels`` from the call record (``app.calls.span.metric_labels``); tokens and cost from
        the attributes the call ended with."""
        if labels.get(sc.OPERATION_NAME) == sc.OP_EMBEDDINGS:
            self._embeddings(labels, attrs, duration)
        else:
            self._inference(labels, attrs, duration, ttfc)
        if self.legacy is not None:
            self.legacy.record(labels, attrs, duration, ttfc)
        if sc.USAGE_COST in attrs:
            self.spend.add(attrs[sc.USAGE_COST], labels)

    def _inference(self, labels: Mapping[str, Any], attrs: Mapping[str, Any], duration: float,
                   ttfc: float | None) -> None:
        self.duration.record(duration, labels)
        if ttfc is not None:
            self.first_chunk.record(ttfc, labels)
        if sc.USAGE_INPUT_TOKENS in attrs:
            self.input_tokens.record(attrs[sc.USAGE_INPUT_TOKENS], labels)
        if sc.USAGE_OUTPUT_TOKENS in attrs:
            self.output_tokens.record(attrs[sc.USAGE_OUTPUT_TOKENS], labels)
        usage_labels = {**labels, sc.TOKEN_MODALITY: sc.TOKEN_MODALITY_UNKNOWN}
        for attr, counter in self.usage.items():
            if attr in attrs:
                counter.add(attrs[attr], usage_labels)

    def _embeddings(self, labels: Mapping[str, Any], attrs: Mapping[str, Any], duration: float) -> None:
        self.embeddings_duration.record(duration, labels)
        if sc.USAGE_INPUT_TOKENS in attrs:
            self.embeddings_tokens.record(attrs[sc.USAGE_INPUT_TOKENS], labels)


class _LegacyMetrics:
    """The v1.41 names: one histogram of tokens by ``gen_ai.token.type``, duration for every operation."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = _tokens(meter, sc.LEGACY_METRIC_TOKEN_USAGE)
        self.duration = _seconds(meter, sc.LEGACY_METRIC_OPERATION_DURATION)
        self.first_chunk = _seconds(meter, sc.LEGACY_METRIC_TIME_TO_FIRST_CHUNK)

    def record(self, labels: Mapping[str, Any], attrs: Mapping[str, Any], duration: float,
               ttfc: float | None) -> None:
        self.duration.record(duration, labels)
        if ttfc is not None:
            self.first_chunk.record(ttfc, labels)
        for key, kind in ((sc.USAGE_INPUT_TOKENS, "input"), (sc.USAGE_OUTPUT_TOKENS, "output")):
            if key in attrs:
                self.tokens.record(attrs[key], {**labels, sc.LEGACY_TOKEN_TYPE: kind})


def _seconds(meter: Meter, name: str) -> Any:
    return meter.create_histogram(name, unit="s", explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)


def _tokens(meter: Meter, name: str) -> Any:
    return meter.create_histogram(name, unit="{token}", explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
