"""What ``bench/phoenix_interop.py`` checks in the spans Phoenix's REST API lists, and the report it prints.

Spans are as ``GET /v1/projects/{name}/spans`` returns them: ``context.trace_id``/``span_id``, ``parent_id``,
``span_kind`` (Phoenix's OpenInference kind, which it infers from ``gen_ai.operation.name``), ``status_code``,
flattened ``attributes`` (ours, plus the OpenInference ones Phoenix derives, e.g. ``llm.token_count.prompt``)
and ``events``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts import semconv as sc
from tests.support.upstream import RESPONSE_MODEL_SUFFIX, USAGE

MODEL = "gpt"
MODEL_SERVED = "gpt-4o-mini" + RESPONSE_MODEL_SUFFIX  # what the fake upstream answers with
Span = dict[str, Any]
Check = tuple[bool, str, str]  # passed, what, the evidence


@dataclass(frozen=True)
class Expected:
    project: str
    team_id: str
    calls: dict[str, int]  # plain / stream / blocked
    delivered: int  # spans the gateway's ledger says it delivered to this team's callback


def op(span: Span) -> Any:
    return span["attributes"].get(sc.OPERATION_NAME)


def calls_of(spans: Iterable[Span]) -> list[Span]:
    return [s for s in spans if op(s) == sc.OP_CHAT]


def guardrails_of(spans: Iterable[Span]) -> list[Span]:
    return [s for s in spans if op(s) == sc.OP_APPLY_GUARDRAIL]


def children(spans: Iterable[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.get("parent_id") == parent["context"]["span_id"]]


def upstream_http(span: Span) -> bool:
    """The HTTP child span of the model call (the Content Safety calls are HTTP children of the call too)."""
    return str(span["attributes"].get(sc.URL_FULL, "")).endswith("/v1/chat/completions")


def blocked(call: Span) -> bool:
    return call["status_code"] == "ERROR"


def check(passed: bool, what: str, evidence: Any) -> Check:
    return bool(passed), what, str(evidence)


# --- per team ---------------------------------------------------------------------------------------


def placement(exp: Expected, spans: list[Span]) -> list[Check]:
    foreign = Counter(s["attributes"].get(sc.TEAM_ID) for s in spans if s["attributes"].get(sc.TEAM_ID) != exp.team_id)
    return [check(len(spans) == exp.delivered, f"{exp.project}: Phoenix holds every span delivered",
                  f"{len(spans)} stored, ledger delivered {exp.delivered}"),
            check(spans and not foreign, f"{exp.project}: every span is this team's ({sc.TEAM_ID})",
                  f"foreign: {dict(foreign)}" if foreign else f"{len(spans)} of {len(spans)}")]


def llm_spans(exp: Expected, spans: list[Span]) -> list[Check]:
    calls = calls_of(spans)
    kinds = Counter(c["span_kind"] for c in calls)
    streamed = [c for c in calls if c["attributes"].get(sc.REQUEST_STREAM) is True]
    return [check(len(calls) == sum(exp.calls.values()), f"{exp.project}: one span per call",
                  f"{len(calls)} chat spans for {exp.calls}"),
            check(set(kinds) == {"LLM"}, f"{exp.project}: Phoenix reads the calls as LLM spans", dict(kinds)),
            check(len(streamed) == exp.calls["stream"], f"{exp.project}: the streamed call ({sc.REQUEST_STREAM})",
                  len(streamed)),
            check(sum(map(blocked, calls)) == exp.calls["blocked"], f"{exp.project}: the blocked call is an error",
                  sum(map(blocked, calls))),
            *model_and_tokens(exp, calls)]


def model_and_tokens(exp: Expected, calls: list[Span]) -> list[Check]:
    answered = [c["attributes"] for c in calls if not blocked(c)]
    models = Counter((c["attributes"].get(sc.REQUEST_MODEL), c["attributes"].get("llm.model_name")) for c in calls)
    ours = [(a.get(sc.USAGE_INPUT_TOKENS), a.get(sc.USAGE_OUTPUT_TOKENS), a.get(sc.USAGE_CACHE_READ_INPUT_TOKENS))
            for a in answered]
    phoenix = [(a.get("llm.token_count.prompt"), a.get("llm.token_count.completion"), a.get("llm.token_count.total"))
               for a in answered]
    want = (USAGE["prompt_tokens"], USAGE["completion_tokens"], USAGE["prompt_tokens_details"]["cached_tokens"])
    served = Counter(a.get(sc.RESPONSE_MODEL) for a in answered)
    # Phoenix names the model by gen_ai.request.model when there is one: the model group the client asked for.
    return [check(set(models) == {(MODEL, MODEL)}, f"{exp.project}: {sc.REQUEST_MODEL} on every call, "
                  "Phoenix's llm.model_name", dict(models)),
            check(set(served) == {MODEL_SERVED}, f"{exp.project}: {sc.RESPONSE_MODEL} on every answered call",
                  dict(served)),
            check(answered and set(ours) == {want}, f"{exp.project}: GenAI usage (input, output, cache_read tokens)",
                  dict(Counter(ours))),
            check(answered and set(phoenix) == {(want[0], want[1], want[0] + want[1])},
                  f"{exp.project}: Phoenix's own token counts (prompt, completion, total)", dict(Counter(phoenix))),
            *messages(exp, answered)]


def messages(exp: Expected, answered: list[dict[str, Any]]) -> list[Check]:
    """Phoenix turned gen_ai.input/output.messages into its own message view, prompt and answer as sent."""
    shown = [(a.get("llm.input_messages.0.message.content"), a.get("llm.output_messages.0.message.content"))
             for a in answered]
    wrong = [pair for pair in shown if not (pair[0] and pair[0].startswith(exp.project)
                                           and pair[1] == f"fake says: {pair[0]}")]
    return [check(answered and not wrong, f"{exp.project}: Phoenix shows each prompt and answer (llm.*_messages)",
                  f"wrong: {wrong[:2]}" if wrong else f"{len(shown)} of {len(shown)}")]


def guardrail_spans(exp: Expected, spans: list[Span], secret_text: str) -> list[Check]:
    calls = {c["context"]["span_id"]: c for c in calls_of(spans)}
    checks = guardrails_of(spans)
    orphans = [g for g in checks if g.get("parent_id") not in calls
               or calls[g["parent_id"]]["context"]["trace_id"] != g["context"]["trace_id"]]
    attrs = Counter((g["attributes"].get(sc.PROVIDER_NAME), g["attributes"].get(sc.GUARDRAIL_COMPONENT_NAME))
                    for g in checks)
    events = [e for g in checks for e in g["events"] if e["name"] == sc.GUARDRAIL_RESULT_EVENT]
    return [check(checks and not orphans, f"{exp.project}: guardrail spans are children of their call, same trace",
                  f"{len(checks)} guardrail spans, {len(orphans)} not under a call of this trace"),
            check(checks and {g["span_kind"] for g in checks} == {sc.OPENINFERENCE_GUARDRAIL},
                  f"{exp.project}: Phoenix files them as guardrails", dict(Counter(g["span_kind"] for g in checks))),
            check(set(attrs) == {(sc.PROVIDER_AZURE_CONTENT_SAFETY, sc.COMPONENT_AZURE_CONTENT_SAFETY)},
                  f"{exp.project}: guardrail provider and component", dict(attrs)),
            check(len(events) >= 4 * len(checks) > 0,
                  f"{exp.project}: a {sc.GUARDRAIL_RESULT_EVENT} event per category", f"{len(events)} events on "
                  f"{len(checks)} spans"),
            check(checks and secret_text not in json.dumps(checks), f"{exp.project}: no guardrail span holds the text",
                  "checked text absent" if secret_text not in json.dumps(checks) else "TEXT FOUND"),
            *stages(exp, spans, list(calls.values()))]


def stages(exp: Expected, spans: list[Span], calls: list[Span]) -> list[Check]:
    """Each call's input was checked, each answered call's output too, and the blocked one says so."""
    def sources(call: Span) -> set[str]:
        return {g["attributes"].get(sc.GUARDRAIL_SOURCE) for g in guardrails_of(children(spans, call))}

    unchecked = [c["name"] for c in calls if "input" not in sources(c)
                 or (not blocked(c) and "output" not in sources(c))]
    verdicts = Counter(g["attributes"].get(sc.GUARDRAIL_VERDICT) for c in calls if blocked(c)
                       for g in guardrails_of(children(spans, c)))
    no_upstream = [c["name"] for c in calls if not blocked(c)
                   and not any(upstream_http(s) for s in children(spans, c))]
    return [check(calls and not unchecked, f"{exp.project}: input and output checked on every answered call",
                  f"{len(calls) - len(unchecked)} of {len(calls)}"),
            check(verdicts.get("blocked") == exp.calls["blocked"], f"{exp.project}: the blocked call's guardrail "
                  f"says blocked ({sc.GUARDRAIL_VERDICT})", dict(verdicts)),
            check(not no_upstream, f"{exp.project}: the upstream HTTP call is a child of each answered call",
                  f"missing on {len(no_upstream)}")]


# --- all together -----------------------------------------------------------------------------------


def check_phoenix(expected: list[Expected], stored: dict[str, list[Span]],
                  secret_text: str) -> tuple[list[Check], dict[str, dict[str, Any]]]:
    """The checks and, per Phoenix project, its span counts."""
    checks: list[Check] = []
    for exp in expected:
        spans = stored.get(exp.project, [])
        checks.append(check(exp.project in stored, f"{exp.project}: a Phoenix project of that name", sorted(stored)))
        checks += placement(exp, spans) + llm_spans(exp, spans) + guardrail_spans(exp, spans, secret_text)
    ours = {e.project for e in expected}
    strays = {name: len(spans) for name, spans in stored.items() if name not in ours and spans}
    checks.append(check(not strays, "no span in any other project (default included)", strays or "none"))
    traces = [{s["context"]["trace_id"] for s in stored.get(e.project, [])} for e in expected]
    shared = set.intersection(*traces) if traces else set()
    checks.append(check(not shared, "no trace in two projects", f"{len(shared)} shared"))
    return checks, {name: counts(spans) for name, spans in stored.items()}


def counts(spans: list[Span]) -> dict[str, Any]:
    guardrails = guardrails_of(spans)
    http = [s for s in spans if sc.HTTP_REQUEST_METHOD in s["attributes"]]
    calls = calls_of(spans)
    return {"spans": len(spans), "calls": len(calls), "guardrails": len(guardrails), "HTTP": len(http),
            "other": len(spans) - len(calls) - len(guardrails) - len(http),
            "Phoenix kinds": dict(Counter(s["span_kind"] for s in spans)),
            "guardrail kind": dict(Counter(g["span_kind"] for g in guardrails))}


def print_report(title: str, checks: list[Check], table: dict[str, dict[str, Any]],
                 timings: dict[str, float]) -> int:
    """The report on stdout; 0 when every check passed, else 1."""
    print(f"\nPhoenix interop: {title}")
    for project, row in table.items():
        print(f"  project {project:<8} " + "  ".join(f"{k}: {v}" for k, v in row.items()))
    for passed, what, evidence in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {what}  [{evidence}]")
    print("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    failed = sum(not passed for passed, _, _ in checks)
    print(f"{'FAIL' if failed else 'PASS'}: {len(checks) - failed} of {len(checks)} checks passed", flush=True)
    return 1 if failed else 0
