"""What the native providers' translation costs the gateway: chat through ``openai/`` (the baseline),
``anthropic/``, ``gemini/`` and ``bedrock/``, plain and streamed, against fast fakes of each API.

    .venv/bin/python bench/providers.py [--quick] [--concurrency 16] [--callbacks file]

Same layout and counters as ``bench/run.py``: one gateway worker pinned to core 0; the fakes
(``native_fakes.py``, which serves the OpenAI routes too) and wrk on core 1; CPU ms/req is the
gateway's utime+stime over the measured run divided by the requests it completed. Every fake
answers the same 10 words and 42 prompt tokens (streams in 10 pieces), so a row's difference from
the ``openai/`` row is the translation: request body, answer or events, usage. ``bedrock/`` is
measured only when ``app/providers/bedrock`` exists in this tree.

``--translation``: the dialects alone, in process (no gateway, no wrk): CPU per call of building
the native request and reading the native answer (or feeding the native stream through the
translator), on the bench fakes' own bytes, beside encoding the OpenAI body (what ``openai/`` does).
"""

import argparse
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fake_upstream import CONTENT_WORDS
from run import (
    MASTER_KEY,
    REPO,
    RESULTS_DIR,
    VENV_BIN,
    Gateway,
    Target,
    Upstream,
    ensure_wrk,
    gateway_unavailable_reason,
    measure,
)

PROVIDERS = ("openai", "anthropic", "gemini", "bedrock")
MESSAGES = [{"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello to the benchmark in one short sentence."}]
TEXT = "".join(CONTENT_WORDS)
STREAM = {"stream": True, "stream_options": {"include_usage": True}}

CONFIG = """\
model_list:
  - model_name: bench-openai
    litellm_params: {{model: openai/bench-chat, api_base: "http://127.0.0.1:{upstream}/v1", api_key: sk-bench-up}}
  - model_name: bench-anthropic
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "http://127.0.0.1:{upstream}",
                     api_key: sk-ant-bench-0123456789}}
  - model_name: bench-gemini
    litellm_params: {{model: gemini/gemini-2.5-flash, api_base: "http://127.0.0.1:{upstream}",
                     api_key: AIza-bench-0123456789}}
{bedrock}litellm_settings:
  success_callback: {callbacks}
environment_variables:
  OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:{sink}"
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf"
spangate_settings:
  data_dir: "{data_dir}"
  durable_delivery: {durable}
general_settings:
  master_key: "{master_key}"
"""
BEDROCK = """\
  - model_name: bench-bedrock
    litellm_params: {{model: "bedrock/anthropic.claude-3-haiku-20240307-v1:0", aws_region_name: us-east-1,
                     aws_bedrock_runtime_endpoint: "http://127.0.0.1:{upstream}",
                     aws_access_key_id: AKIABENCH0123456789, aws_secret_access_key: bench-secret-0123456789}}
"""


def bedrock_present() -> bool:
    return (REPO / "app" / "providers" / "bedrock.py").exists() or (REPO / "app" / "providers" / "bedrock").is_dir()


def body_of(provider: str, stream: bool) -> dict[str, Any]:
    return {"model": f"bench-{provider}", "messages": MESSAGES, **(STREAM if stream else {})}


def check(url: str, body: dict[str, Any]) -> str | None:
    """One call by hand: a fast error must not pass for a fast answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        detail = exc.read().decode()[:300] if isinstance(exc, urllib.error.HTTPError) else ""
        return f"{exc} {detail}".strip()
    return None if answered_text(text, bool(body.get("stream"))) == TEXT else f"unexpected answer: {text[:300]}"


def answered_text(text: str, stream: bool) -> str | None:
    """The answer's text, when it is a whole answer with usage (a stream: its chunks, to ``[DONE]``)."""
    if not stream:
        answer = json.loads(text)
        return answer["choices"][0]["message"]["content"] if answer.get("usage") else None
    events = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    if not text.rstrip().endswith("data: [DONE]") or not events or not events[-1].get("usage"):
        return None
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


def bench(gateway: Gateway, upstream: Upstream, providers: list[str], args: argparse.Namespace, wrk: str,
          workdir: Path) -> list[dict[str, Any]]:
    target = Target("gateway", gateway.url, gateway.pids, upstream.pids)
    url = gateway.url + "/v1/chat/completions"
    rows = []
    for provider in providers:
        for stream in (False, True):
            body = body_of(provider, stream)
            problem = check(url, body)
            scenario = "chat-stream" if stream else "chat"
            if problem:
                print(f"  {provider:9} {scenario:12} skipped: {problem}", flush=True)
                continue
            body_file = workdir / f"{provider}-{scenario}.json"
            body_file.write_text(json.dumps(body))
            for connections in args.concurrency:
                result = measure(wrk, target, "/v1/chat/completions", body_file, connections, args)
                rows.append({"provider": provider, "scenario": scenario, "concurrency": connections, **result})
                print(f"  {provider:9} {scenario:12} c={connections:<3} {result['rps']:7.0f} req/s "
                      f"{result['cpu_ms_per_req']:.3f} ms CPU/req (other load {result['other_cpu_pct']:.0f}%)",
                      flush=True)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    base = {(r["scenario"], r["concurrency"]): r for r in rows if r["provider"] == "openai"}
    header = (f"{'provider':10} {'scenario':12} {'conc':>4} {'req/s':>7} {'x openai':>8} {'CPU ms/req':>10} "
              f"{'x openai':>8} {'p50 ms':>7} {'errors':>6} {'other%':>6}")
    print("\n" + header + "\n" + "-" * len(header))
    for r in sorted(rows, key=lambda r: (r["scenario"], r["concurrency"], PROVIDERS.index(r["provider"]))):
        b = base.get((r["scenario"], r["concurrency"]))
        rps_ratio = f"{r['rps'] / b['rps']:8.2f}" if b else f"{'':8}"
        cpu_ratio = f"{r['cpu_ms_per_req'] / b['cpu_ms_per_req']:8.2f}" if b else f"{'':8}"
        print(f"{r['provider']:10} {r['scenario']:12} {r['concurrency']:>4} {r['rps']:7.0f} {rps_ratio} "
              f"{r['cpu_ms_per_req']:10.3f} {cpu_ratio} {r['p50_us'] / 1000:7.2f} {r['errors']:>6} "
              f"{r['other_cpu_pct']:6.0f}")


def translation_costs(calls: int = 5000) -> None:
    """Microseconds of CPU per call for each dialect's translation, in this process."""
    sys.path.insert(0, str(REPO))  # the tree this bench sits in, not an installed copy
    import msgspec
    from native_fakes import anthropic_events, anthropic_message, gemini_answer, gemini_events

    from app.config.providers.anthropic import AnthropicParams
    from app.config.settings import DeploymentConfig
    from app.providers.anthropic import AnthropicDialect
    from app.providers.gemini import GeminiDialect, GeminiRoute

    config = DeploymentConfig("b", "anthropic", "claude-haiku-4-5", "b-0", api_base="http://x", api_key="k",
                              params=AnthropicParams(64000))
    gemini = GeminiDialect("m", GeminiRoute("http://x", "m", "k"))
    dialects = {"anthropic": (AnthropicDialect(config), anthropic_message("m"), anthropic_events("m")),
                "gemini": (gemini, gemini_answer("m"), gemini_events("m"))}
    if bedrock_present():
        dialects["bedrock"] = bedrock_dialect()
    for stream in (False, True):
        payload, scenario = body_of("x", stream), "chat-stream" if stream else "chat"
        encode = _per_call(calls, msgspec.json.encode, payload)
        print(f"openai     {scenario:12} {encode:7.1f} us/call (the body encoded)")
        for name, (dialect, answer, events) in dialects.items():
            cost = _per_call(calls, _translate, dialect, payload, answer if not stream else None, events)
            print(f"{name:10} {scenario:12} {cost:7.1f} us/call")


def bedrock_dialect() -> tuple[Any, bytes, list[bytes]]:
    """Bedrock's dialect with static keys loaded (its request is SigV4-signed: that is counted too)."""
    import asyncio

    from native_fakes import bedrock_answer, bedrock_events

    from app.config.settings import parse_config
    from app.providers.bedrock import BedrockDialect
    from app.providers.bedrock.auth import BedrockAuth

    entry = {"model_name": "b", "litellm_params": {
        "model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0", "aws_region_name": "us-east-1",
        "aws_access_key_id": "AKIABENCH0123456789", "aws_secret_access_key": "bench-secret-0123456789"}}
    config = parse_config({"model_list": [entry]}, environ={}).deployments[0]
    auth = BedrockAuth(config.params, "bench")
    asyncio.run(auth.refresh())
    return BedrockDialect(config, auth), bedrock_answer(), [bedrock_events()]


def _translate(dialect: Any, payload: dict[str, Any], answer: bytes | None, events: list[bytes]) -> None:
    """One call's translation: the request built, then the answer read or the stream fed through."""
    from app.calls.operations import Operation

    stream = answer is None
    dialect.request(Operation.CHAT, payload, stream)
    if not stream:
        dialect.answer(Operation.CHAT, answer, payload)
        return
    translator = dialect.stream(Operation.CHAT, payload)
    for event in events:
        translator.feed(event)
    translator.close()


def _per_call(calls: int, work: Any, *args: Any) -> float:
    for _ in range(calls // 10):  # warm up
        work(*args)
    start = time.process_time()
    for _ in range(calls):
        work(*args)
    return (time.process_time() - start) * 1e6 / calls


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Native providers' cost against the openai/ path.")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[16])
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 8, quick 3)")
    parser.add_argument("--callbacks", nargs="+", default=["file"],
                        help="the gateway's success_callback (default: file, so translation is not drowned out)")
    parser.add_argument("--memory-only", action="store_true", help="durable_delivery: false (no spool)")
    parser.add_argument("--spangate", type=Path, default=VENV_BIN / "spangate")
    parser.add_argument("--translation", action="store_true", help="only the dialects' CPU per call, in process")
    parser.add_argument("--providers", nargs="+", choices=PROVIDERS, default=list(PROVIDERS),
                        help="which, in this order (rows measured later may find a busier box)")
    args = parser.parse_args()
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.warmup = 1.0 if args.quick else 2.0
    return args


def main() -> None:
    args = parse_args()
    if args.translation:
        translation_costs()
        return
    reason = gateway_unavailable_reason(args.spangate)
    if reason:
        raise SystemExit(f"bench: {reason}")
    wrk = ensure_wrk()
    RESULTS_DIR.mkdir(exist_ok=True)
    providers = list(args.providers)
    if "bedrock" in providers and not bedrock_present():
        print("bedrock/: skipped, app/providers/bedrock is not in this tree", flush=True)
        providers.remove("bedrock")
    template = CONFIG.replace("{bedrock}", BEDROCK if "bedrock" in providers else "")
    upstream = Upstream("native_fakes.py")
    try:
        with tempfile.TemporaryDirectory(prefix="spangate-providers-") as tmp:
            workdir = Path(tmp)
            gateway = Gateway(args.spangate, upstream, workdir, args, config_template=template)
            try:
                rows = bench(gateway, upstream, providers, args, wrk, workdir)
            finally:
                gateway.stop()
    finally:
        upstream.stop()
    print_table(rows)
    out = RESULTS_DIR / f"providers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    print(f"raw results: {out}")


if __name__ == "__main__":
    main()
