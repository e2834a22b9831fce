"""The ``azure_content_safety`` call hook: the input is checked before the model is called, a
complete answer before it is returned, a stream as it goes (``app.hooks.moderation.stream``).

A verdict over a threshold rejects the call with ``ModerationBlocked`` (400, ``code``
``moderation_blocked``, the error object naming ``source``, ``category`` and ``severity``), also when
it came from one part of a long text whose other parts got no verdict; no verdict (down, slow, 429,
5xx, a wrong key) is ``ModerationUnavailable`` (503) unless the hook fails open, when the call goes
on and the miss is counted and put on the span. An input too long to check in time is
``ModerationInputTooLong`` (413) in either mode, never passed unchecked: over ``max_input_chars``
before anything is sent, or when the deadline came with parts of it not yet sent. A stream event
whose data cannot be read ends the stream with ``ModerationUnreadable`` (502), in either mode. The
flagged text itself is never in an error, a log line or an attribute: only categories, severities and
reasons are.

What the span gets goes into ``call.extra`` (names in ``contracts.semconv``); the proxy copies it
onto the gateway span. Each check is also a guardrail span of its own, a child of the call's
(``app.hooks.moderation.guardrail``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span

from app.calls.record import CallRecord
from app.config.keys import ConfigError
from app.errors import InvalidRequest, PayloadTooLarge, ServiceUnavailable, UpstreamInvalidResponse
from app.hooks.chain import CallHook, StreamFilter
from app.hooks.moderation.client import ContentSafetyClient, ServiceMiss, Severities
from app.hooks.moderation.guardrail import (
    BLOCKED,
    PASSED,
    TOO_LONG,
    UNAVAILABLE,
    GuardrailSpans,
    decided,
    missed,
    rated,
)
from app.hooks.moderation.settings import (
    CATEGORIES,
    SECTION,
    ContentSafetySettings,
    Policy,
    StreamMode,
    TeamModeration,
    parse_team,
)
from app.hooks.moderation.stream import EndFilter, WindowFilter
from app.hooks.moderation.texts import request_text, response_text
from contracts import semconv as sc

log = logging.getLogger("spangate.moderation")
MISS_LOG_INTERVAL = 60.0  # seconds between "still failing" lines while the service misses
DEFAULT_RETRY_AFTER = 2  # seconds, when a 503 has no hint from the service
TeamParams = Callable[[str | None], Mapping[str, Any] | None]


class ModerationBlocked(InvalidRequest):
    code = "moderation_blocked"

    def __init__(self, source: str, category: str, severity: int, threshold: int) -> None:
        super().__init__(f"the {source} was blocked by content moderation: {category} at severity {severity} "
                         f"(this gateway blocks {category} from severity {threshold})")
        self.fields = {"source": source, "category": category, "severity": severity}


class ModerationUnavailable(ServiceUnavailable):
    def __init__(self, source: str, reason: str, retry_after: int | None) -> None:
        super().__init__(f"content moderation could not check the {source} ({reason}); the call was not "
                         "made. Try again shortly", retry_after=retry_after or DEFAULT_RETRY_AFTER,
                         code="moderation_unavailable")
        self.fields = {"source": source}


class ModerationInputTooLong(PayloadTooLarge):
    code = "moderation_input_too_long"

    def __init__(self, chars: int, limit: int | None) -> None:
        why = (f"over the {limit} characters content moderation checks (azure_content_safety_params.max_input_chars)"
               if limit is not None else "too long for content moderation to check within its deadline "
               "(azure_content_safety_params.timeout_seconds)")
        super().__init__(f"the input carries {chars} characters of text, {why}; the call was not made. "
                         "Send a shorter input")
        self.fields = {"source": sc.MODERATION_INPUT}


class ModerationUnreadable(UpstreamInvalidResponse):
    """A stream event whose data no JSON reader takes: its text cannot be checked, so it is not sent."""

    code = "moderation_unreadable_event"

    def __init__(self) -> None:
        super().__init__("the upstream sent a stream event whose data content moderation cannot read (not JSON); "
                         "it was not passed on and the stream was ended")
        self.fields = {"source": sc.MODERATION_OUTPUT}


class ModerationMetrics:
    def __init__(self, meter: Meter) -> None:
        self.checks = meter.create_counter(sc.METRIC_MODERATION_CHECKS, unit="{check}")
        self.blocks = meter.create_counter(sc.METRIC_MODERATION_BLOCKS, unit="{call}")
        self.fail_open = meter.create_counter(sc.METRIC_MODERATION_FAIL_OPEN, unit="{check}")


class ContentSafetyHook(CallHook):
    name = "azure_content_safety"

    def __init__(self, settings: ContentSafetySettings, client: ContentSafetyClient, metrics: ModerationMetrics,
                 team_params: TeamParams | None = None, on_close: Callable[[], Any] | None = None,
                 guardrails: GuardrailSpans | None = None) -> None:
        self.settings = settings
        self._guardrails = guardrails or GuardrailSpans(None, settings.endpoint)
        self._client = client
        self._metrics = metrics
        self._team_params = team_params
        self._on_close = on_close
        self._global = Policy(settings.thresholds)
        # team -> (the raw override it was parsed from, its policy): re-parsed only when the store's
        # snapshot hands a new object, so a call costs one lookup and one identity test.
        self._teams: dict[str, tuple[object, Policy | None]] = {}
        self._miss_logged = 0.0
        self._misses = 0
        self._unreadable_logged = 0.0
        self._unreadable = 0
        self._spawned: set[asyncio.Task[None]] = set()

    # --- points -------------------------------------------------------------------------------

    async def before_upstream(self, call: CallRecord) -> None:
        policy = self.policy(call)
        if policy is not None:
            await self.check(call, sc.MODERATION_INPUT, request_text(call.operation, call.request), policy)

    async def after_upstream(self, call: CallRecord) -> None:
        policy = self.policy(call)
        if policy is not None:
            await self.check(call, sc.MODERATION_OUTPUT, response_text(call.operation, call.response), policy)

    def stream_filter(self, call: CallRecord) -> StreamFilter | None:
        policy = self.policy(call)
        if policy is None:
            return None
        moderator = _InStream(self, trace.get_current_span())  # the call's span, while it is still current
        if self.settings.stream_mode is StreamMode.END:
            return EndFilter(moderator, call, policy)
        return WindowFilter(moderator, call, policy, self.settings.stream_window_chars)

    def unreadable(self, call: CallRecord) -> ModerationUnreadable:
        """The error that ends a stream at an event its filter cannot read; counted, logged, on the span."""
        call.extra[sc.moderation_unavailable(sc.MODERATION_OUTPUT)] = "unreadable_event"
        self._metrics.checks.add(1, {sc.MODERATION_SOURCE_LABEL: sc.MODERATION_OUTPUT,
                                     sc.MODERATION_OUTCOME: "unreadable"})
        self._unreadable += 1
        now = time.monotonic()
        if not self._unreadable_logged or now - self._unreadable_logged >= MISS_LOG_INTERVAL:
            deployment = call.deployment.config.deployment_id if call.deployment is not None else "?"
            log.warning("content moderation could not read a stream event from %s (not JSON): %d stream(s) "
                        "ended there since the last line", deployment, self._unreadable)
            self._unreadable_logged, self._unreadable = now, 0
        return ModerationUnreadable()

    def spawn(self, check: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A stream window's check as a task. It is never cancelled: a stream that ends (blocked, or
        the client left) lets its last few checks finish (bounded by the timeout) rather than cut a
        request mid-connect, and their outcome, already recorded, is not news."""
        task = asyncio.get_running_loop().create_task(check)
        self._spawned.add(task)
        task.add_done_callback(_forget(self._spawned))
        return task

    async def aclose(self) -> None:
        if self._spawned:
            await asyncio.wait(set(self._spawned), timeout=self.settings.timeout + 1.0)
        if self._on_close is not None:
            await self._on_close()

    # --- the check ----------------------------------------------------------------------------

    def policy(self, call: CallRecord) -> Policy | None:
        """The thresholds for this caller's team, or ``None`` when the team is exempt (recorded)."""
        policy = self._team_policy(call.team_id) if self._team_params is not None else self._global
        if policy is None:
            call.extra[sc.MODERATION_EXEMPT] = True
        return policy

    def _team_policy(self, team_id: str | None) -> Policy | None:
        raw = self._team_params(team_id) if self._team_params is not None and team_id else None
        if raw is None or team_id is None:
            return self._global
        cached = self._teams.get(team_id)
        if cached is not None and cached[0] is raw:
            return cached[1]
        policy = self._parse_team(team_id, raw)
        self._teams[team_id] = (raw, policy)
        return policy

    def _parse_team(self, team_id: str, raw: Mapping[str, Any]) -> Policy | None:
        try:
            team: TeamModeration = parse_team(raw, f"team {team_id} {SECTION}")
        except ConfigError as exc:  # the admin API refuses these; one stored by other means is reported
            log.error("%s; the global thresholds apply to this team", exc)
            return self._global
        if team.exempt:
            return None
        return Policy({**self.settings.thresholds, **team.thresholds})

    async def check(self, call: CallRecord, source: str, text: str, policy: Policy, parent: Span | None = None) -> None:
        """Raises ``ModerationBlocked`` over a threshold, ``ModerationInputTooLong`` for an input too long
        to check, ``ModerationUnavailable`` when failing closed. One guardrail span, ended whatever happens."""
        if not text:
            return
        span = self._guardrails.start(source, parent)
        try:
            await self._check(call, source, text, policy, span)
        finally:
            span.end()

    async def _check(self, call: CallRecord, source: str, text: str, policy: Policy, span: Span) -> None:
        if source == sc.MODERATION_INPUT and len(text) > self.settings.max_input_chars:
            self._too_long(source, span)
            raise ModerationInputTooLong(len(text), self.settings.max_input_chars)
        try:
            severities, parts = await self._client.analyze(text)
        except ServiceMiss as miss:
            self._missed(call, source, miss, policy, len(text), span)
            return
        self._record(call, source, severities, parts)
        rated(span, severities)
        self._judge(call, source, severities, policy, span)

    def _judge(self, call: CallRecord, source: str, severities: Severities, policy: Policy, span: Span, *,
               passed: bool = True) -> None:
        """Raises ``ModerationBlocked`` when ``severities`` block; counts a pass when ``passed`` says
        the severities are the whole text's."""
        blocked = verdict(severities, policy.thresholds)
        if blocked is None:
            if passed:
                self._metrics.checks.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_OUTCOME: "passed"})
                decided(span, PASSED)
            return
        category, severity = blocked
        decided(span, BLOCKED, category)
        self._metrics.checks.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_OUTCOME: "blocked"})
        self._metrics.blocks.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_CATEGORY_LABEL: category})
        call.extra.update({sc.MODERATION_BLOCKED: True, sc.MODERATION_SOURCE: source,
                           sc.MODERATION_CATEGORY: category, sc.MODERATION_SEVERITY: severity})
        raise ModerationBlocked(source, category, severity, policy.thresholds[category])

    @staticmethod
    def _record(call: CallRecord, source: str, severities: Severities, parts: int) -> None:
        for category, severity in severities.items():
            name = sc.moderation_severity(source, category)
            call.extra[name] = max(severity, call.extra.get(name, 0))  # a stream's windows: the highest
        parts_name = sc.moderation_parts(source)
        call.extra[parts_name] = call.extra.get(parts_name, 0) + parts

    def _missed(self, call: CallRecord, source: str, miss: ServiceMiss, policy: Policy, chars: int,
                span: Span) -> None:
        """No verdict for the whole text. A part that got one may still block it; an input with parts
        never sent was too long to check in time (413 in either mode: passing it open would pass text
        nobody read, and a 503 invites a retry that misses again); otherwise the service missed."""
        call.extra[sc.moderation_unavailable(source)] = miss.reason
        missed(span, miss.reason)
        if miss.checked_parts:
            self._record(call, source, miss.checked, miss.checked_parts)
            rated(span, miss.checked)
            self._judge(call, source, miss.checked, policy, span, passed=False)
        if source == sc.MODERATION_INPUT and miss.unsent:
            self._too_long(source, span)
            raise ModerationInputTooLong(chars, None)
        self._metrics.checks.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_OUTCOME: "unavailable"})
        decided(span, UNAVAILABLE)
        self._log_miss(source, miss.reason)
        if not self.settings.fail_open:
            raise ModerationUnavailable(source, miss.reason, miss.retry_after)
        self._metrics.fail_open.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_REASON: miss.reason})

    def _too_long(self, source: str, span: Span) -> None:
        self._metrics.checks.add(1, {sc.MODERATION_SOURCE_LABEL: source, sc.MODERATION_OUTCOME: "too_long"})
        decided(span, TOO_LONG)

    def _log_miss(self, source: str, reason: str) -> None:
        """One line per interval while the service misses, with the count: an outage under load must
        not write a line per call."""
        self._misses += 1
        now = time.monotonic()
        if now - self._miss_logged < MISS_LOG_INTERVAL and self._miss_logged:
            return
        action = "passed unchecked (fail_open)" if self.settings.fail_open else "refused with 503"
        hint = "; check azure_content_safety_params.key" if reason in ("http_401", "http_403") else ""
        log.warning("content moderation gave no verdict for the %s (%s): %d call(s) %s since the last line%s",
                    source, reason, self._misses, action, hint)
        self._miss_logged = now
        self._misses = 0


class _InStream:
    """The hook as one stream's filter sees it: the relay feeds the filter after the proxy has left the
    call span's context, so the filter's checks name that span as their guardrail spans' parent."""

    def __init__(self, hook: ContentSafetyHook, parent: Span) -> None:
        self._hook = hook
        self._parent = parent

    async def check(self, call: CallRecord, source: str, text: str, policy: Policy) -> None:
        await self._hook.check(call, source, text, policy, self._parent)

    def spawn(self, check: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return self._hook.spawn(check)

    def unreadable(self, call: CallRecord) -> ModerationUnreadable:
        return self._hook.unreadable(call)


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a later window's verdict after the stream ended is not an error

    return done


def verdict(severities: Severities, thresholds: Mapping[str, int]) -> tuple[str, int] | None:
    """The category that blocks (the most severe over its threshold; ties in ``CATEGORIES`` order)."""
    worst: tuple[str, int] | None = None
    for category in CATEGORIES:
        severity = severities.get(category, 0)
        if severity >= thresholds[category] and (worst is None or severity > worst[1]):
            worst = (category, severity)
    return worst
