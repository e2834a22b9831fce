"""Every span attribute and metric name Spangate writes or reads.

The GenAI conventions followed are those of open-telemetry/semantic-conventions-genai (main,
unreleased; its manifest's schema URL is ``SCHEMA_URL``, set on the gateway tracer's scope). They
moved there after semantic-conventions v1.41.0, the last core release that defines them; the
changes since (docs/gen-ai/non-normative/migration.md there) that touch the gateway:
``cache_creation`` became ``cache_write`` (#440), ``gen_ai.client.token.usage`` became the
``gen_ai.client.inference.usage.*`` counters and ``.operation.*`` histograms (#374), and the
inference duration and time-to-first-chunk metrics moved under ``gen_ai.client.inference`` (#521).
Every name is still "Development" stability, so it is pinned here; names a destination's own wire
contract still reads (Langfuse: the v1.41 cache name; dashboards: the v1.41 metrics for one release)
are kept under ``V141_``/``LEGACY_`` names. No other module spells a ``gen_ai.*`` (or ``spangate.*``)
attribute name as a string literal.
"""

from typing import Final

# --- GenAI semantic conventions (semantic-conventions-genai, main) -------------------------------
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/gen-ai-dev/1.42.0-dev"
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
REQUEST_STREAM: Final = "gen_ai.request.stream"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"  # v1.41: cache_creation
# The v1.41 spelling, still what Langfuse reads (contracts.md); only its exporter writes it, on its copy.
V141_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
# Cost stays ``gen_ai.usage.cost`` (USD): the per-operation cost proposal (``gen_ai.usage.cost.amount``,
# ``.currency``, ``.source``; semantic-conventions-genai PR #443) is not merged, and this is the name
# Langfuse reads as a generation's total cost (contracts.md).
USAGE_COST: Final = "gen_ai.usage.cost"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
CONVERSATION_ID: Final = "gen_ai.conversation.id"

# Operation names (values of OPERATION_NAME).
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_APPLY_GUARDRAIL: Final = "apply_guardrail"
# Operations whose spans are parts of a call, not calls: the router sends them to trace destinations
# only, never to the LLM-log destinations (a guardrail check is no Langfuse generation or Datadog log).
TRACE_ONLY_OPERATIONS: Final = frozenset({OP_APPLY_GUARDRAIL})

# Provider names (values of PROVIDER_NAME).
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE: Final = "azure.ai.openai"
PROVIDER_MOCK: Final = "spangate.mock"
PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_GCP_GEMINI: Final = "gcp.gemini"
PROVIDER_GCP_VERTEX_AI: Final = "gcp.vertex_ai"

# --- Guardrails (semantic-conventions-genai docs/gen-ai/gen-ai-guardrails.md) --------------------
# One CLIENT span per Content Safety check, named "apply_guardrail {component name}", with one
# GUARDRAIL_RESULT_EVENT per category the service rated. The conventions keep gen_ai.guardrail.result.*
# for what the service itself reports and forbid deriving an allow/deny verdict there, so the
# gateway's own decision (its thresholds) is GUARDRAIL_VERDICT, in its own namespace.
GUARDRAIL_COMPONENT_NAME: Final = "gen_ai.guardrail.component.name"
GUARDRAIL_SOURCE: Final = "gen_ai.guardrail.source"
GUARDRAIL_RESULT_EVENT: Final = "gen_ai.guardrail.result"
GUARDRAIL_RESULT_TYPE: Final = "gen_ai.guardrail.result.type"
GUARDRAIL_RESULT_VALUE: Final = "gen_ai.guardrail.result.value"
GUARDRAIL_RISK_CATEGORY: Final = "gen_ai.guardrail.risk.category"
GUARDRAIL_RISK_SCORE: Final = "gen_ai.guardrail.risk.score"
GUARDRAIL_RESULT_SEVERITY: Final = "severity"  # Content Safety's result kind: a severity per category
PROVIDER_AZURE_CONTENT_SAFETY: Final = "azure.ai.content_safety"
COMPONENT_AZURE_CONTENT_SAFETY: Final = "Azure AI Content Safety"
GUARDRAIL_VERDICT: Final = "spangate.guardrail.verdict"  # passed, blocked, unavailable, too_long
# OpenInference's span kind, which Arize Phoenix files spans by. Phoenix derives it from gen_ai.operation.name
# for calls (chat -> LLM) but has no mapping for apply_guardrail (20.26: UNKNOWN), so a check says it itself.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_GUARDRAIL: Final = "GUARDRAIL"

# --- General conventions -------------------------------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
CLIENT_ADDRESS: Final = "client.address"
HTTP_STATUS_CODE: Final = "http.response.status_code"
# Stable HTTP client names (semconv 1.23+), written by the httpx instrumentation on the upstream child
# span once app/server/telemetry.py opts it in; named here so tests and readers spell them once.
HTTP_REQUEST_METHOD: Final = "http.request.method"
URL_FULL: Final = "url.full"
# Resource attributes the gateway sets itself (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES may replace them).
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
# The exception event (``exception`` with these attributes) is how OTLP backends without a status
# model of their own (LangSmith) learn that a span failed and why.
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

# --- Metrics -------------------------------------------------------------------------------------
# Inference (chat, text completion): duration, time to first chunk, tokens per operation (histograms)
# and token usage (counters, one per category, each with TOKEN_MODALITY).
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
METRIC_INFERENCE_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
METRIC_INFERENCE_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
METRIC_INFERENCE_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
# Embeddings (docs/gen-ai/client-embeddings.md).
METRIC_EMBEDDINGS_DURATION: Final = "gen_ai.client.embeddings.duration"
METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.embeddings.operation.input_tokens"
TOKEN_MODALITY: Final = "gen_ai.token.modality"
TOKEN_MODALITY_UNKNOWN: Final = "unknown"  # "the provider gave no modality breakdown" (OpenAI's usage totals)
# The v1.41 metrics, also recorded while ``spangate_settings.legacy_genai_metrics`` is true.
LEGACY_METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
LEGACY_METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
LEGACY_METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
LEGACY_TOKEN_TYPE: Final = "gen_ai.token.type"

# --- Spangate's proxy context (one prefix) -------------------------------------------------------
PREFIX: Final = "spangate."
CALL_TYPE: Final = "spangate.call_type"
KEY_HASH: Final = "spangate.key.hash"
KEY_ALIAS: Final = "spangate.key.alias"
TEAM_ID: Final = "spangate.team.id"
TEAM_ALIAS: Final = "spangate.team.alias"
# The span attributes OTLP encoding also puts on the resource, one ResourceSpans per team
# (exporters/encode/otlp_proto.py), for a Collector to route and load-balance on (otel-collector.yaml).
TEAM_RESOURCE: Final = (TEAM_ID, TEAM_ALIAS)
END_USER: Final = "spangate.end_user"
REQUESTER_IP: Final = "spangate.requester_ip"
METADATA_PREFIX: Final = "spangate.metadata."
MODEL_INFO: Final = "spangate.model_info"
MODEL_GROUP: Final = "spangate.model_group"
DEPLOYMENT_ID: Final = "spangate.deployment.id"
STREAM_OUTCOME: Final = "spangate.stream.outcome"
STREAM_SKIPPED: Final = "spangate.stream.skipped"  # events or values the gateway could not read, passed on
OUTPUT_TRUNCATED: Final = "spangate.output.truncated"  # captured output stopped at the capture cap
SYNTHETIC: Final = "spangate.synthetic"

# Values of STREAM_OUTCOME.
STREAM_COMPLETED: Final = "completed"
STREAM_CLIENT_DISCONNECTED: Final = "client_disconnected"
STREAM_UPSTREAM_ERROR: Final = "upstream_error"
# The upstream sent what the gateway will not relay (a chunk of the wrong shape, an event over
# max_sse_event_bytes, or relaying failed unexpectedly): the client got an error event.
STREAM_UPSTREAM_INVALID_RESPONSE: Final = "upstream_invalid_response"
# The body ended cleanly but without ``data: [DONE]``. OpenAI's clients take the end of the body
# as the end of the stream, so the call is OK; the outcome says the marker was missing.
STREAM_ENDED_WITHOUT_DONE: Final = "ended_without_done"
# A hook's stream filter ended the stream with an error (moderation of the output, a user's hook).
STREAM_REJECTED: Final = "rejected"

# --- Content moderation (app.hooks.moderation): the verdict on the gateway span ---------------------------
MODERATION_BLOCKED: Final = "spangate.moderation.blocked"  # true when a check blocked the call
MODERATION_SOURCE: Final = "spangate.moderation.source"  # what was blocked: MODERATION_INPUT or _OUTPUT
MODERATION_CATEGORY: Final = "spangate.moderation.category"  # the category that blocked it
MODERATION_SEVERITY: Final = "spangate.moderation.severity"  # its severity
MODERATION_EXEMPT: Final = "spangate.moderation.exempt"  # the caller's team is exempt: nothing checked
MODERATION_INPUT: Final = "input"
MODERATION_OUTPUT: Final = "output"
# Metrics (counters): checks by source and outcome, blocks by source and category, fail-open passes
# by source and reason.
METRIC_MODERATION_CHECKS: Final = "spangate.moderation.checks"
METRIC_MODERATION_BLOCKS: Final = "spangate.moderation.blocks"
METRIC_MODERATION_FAIL_OPEN: Final = "spangate.moderation.fail_open"
MODERATION_OUTCOME: Final = "outcome"  # metric label: passed, blocked, unavailable
MODERATION_REASON: Final = "reason"  # metric label: why the service missed (timeout, http_429, ...)
MODERATION_CATEGORY_LABEL: Final = "category"
MODERATION_SOURCE_LABEL: Final = "source"


def moderation_severity(source: str, category: str) -> str:
    """``spangate.moderation.input.severity.self_harm``: one category's severity for one source (the
    highest over the parts a long text was split into)."""
    return f"spangate.moderation.{source}.severity.{_snake(category)}"


def moderation_parts(source: str) -> str:
    """How many requests one source's text took (over 10,000 characters it is split)."""
    return f"spangate.moderation.{source}.parts"


def moderation_unavailable(source: str) -> str:
    """Why the service gave no verdict for this source (fail-open passed it, fail-closed refused it)."""
    return f"spangate.moderation.{source}.unavailable"


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() and i else ch.lower() for i, ch in enumerate(name))


# Request-metadata keys the seed documents; destinations map them to their own fields.
META_GENERATION_NAME: Final = "generation_name"
META_GENERATION_ID: Final = "generation_id"
META_TRACE_ID: Final = "trace_id"
META_TRACE_USER_ID: Final = "trace_user_id"
META_SESSION_ID: Final = "session_id"
META_TAGS: Final = "tags"


def metadata_key(key: str) -> str:
    """Attribute name for one request-metadata key."""
    return METADATA_PREFIX + key


# --- Langfuse (destination-specific) -------------------------------------------------------------
# Read by Langfuse's OTLP endpoint (/api/public/otel); only exporters/langfuse writes them, on its
# own copy of a span. Names as in langfuse._client.attributes.LangfuseOtelSpanAttributes (v5).
# The trace's user and session are the general USER_ID and SESSION_ID above.
LANGFUSE_TRACE_NAME: Final = "langfuse.trace.name"
LANGFUSE_TRACE_TAGS: Final = "langfuse.trace.tags"
LANGFUSE_TRACE_METADATA_PREFIX: Final = "langfuse.trace.metadata."
LANGFUSE_OBSERVATION_TYPE: Final = "langfuse.observation.type"
LANGFUSE_OBSERVATION_METADATA_PREFIX: Final = "langfuse.observation.metadata."
LANGFUSE_OBSERVATION_USAGE_DETAILS: Final = "langfuse.observation.usage_details"
LANGFUSE_OBSERVATION_COMPLETION_START_TIME: Final = "langfuse.observation.completion_start_time"

# Values of LANGFUSE_OBSERVATION_TYPE.
LANGFUSE_TYPE_GENERATION: Final = "generation"
LANGFUSE_TYPE_EMBEDDING: Final = "embedding"

# --- Datadog (destination-specific) --------------------------------------------------------------
# Written only by exporters/datadog_logs, into a log item (never on a span): the captured content
# was cut so the log stays under Datadog's 1 MB per log.
DATADOG_CONTENT_TRUNCATED: Final = "spangate.content.truncated"

# --- Sentry (destination-specific) ---------------------------------------------------------------
# Sentry's AI monitoring names a span's op ``gen_ai.<operation>``; exporters/sentry_events puts it in
# an error event's trace context so the event sits beside the AI spans of the same trace.
SENTRY_OPS: Final = {OP_CHAT: "gen_ai.chat", OP_TEXT_COMPLETION: "gen_ai.text_completion",
                     OP_EMBEDDINGS: "gen_ai.embeddings"}
SENTRY_OP_DEFAULT: Final = "gen_ai.request"

# --- LangSmith (destination-specific) ------------------------------------------------------------
# Read by LangSmith's OTLP endpoint (/otel/v1/traces); only exporters/langsmith writes them, on its own
# copy of a span. ``langsmith.trace.session_id`` is deliberately absent: in LangSmith a "session" is a
# tracing project, so a conversation id goes in ``langsmith.metadata.session_id`` (its threads key).
LANGSMITH_SPAN_KIND: Final = "langsmith.span.kind"
LANGSMITH_TRACE_NAME: Final = "langsmith.trace.name"
LANGSMITH_SPAN_TAGS: Final = "langsmith.span.tags"
LANGSMITH_METADATA_PREFIX: Final = "langsmith.metadata."
# GenAI names LangSmith reads that the gateway span does not carry itself: the deprecated system name
# (its ``ls_provider``), the total, and its own spelling of reasoning tokens.
LANGSMITH_GEN_AI_SYSTEM: Final = "gen_ai.system"
LANGSMITH_USAGE_TOTAL_TOKENS: Final = "gen_ai.usage.total_tokens"
LANGSMITH_USAGE_REASONING_TOKENS: Final = "gen_ai.usage.details.reasoning_tokens"

# Values of LANGSMITH_SPAN_KIND.
LANGSMITH_KIND_LLM: Final = "llm"
LANGSMITH_KIND_EMBEDDING: Final = "embedding"
