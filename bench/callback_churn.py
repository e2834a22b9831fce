"""How long the event loop stalls while 1,000 teams' callbacks change (issue #10).

Starts the gateway (one worker, SQLite), creates N teams, then sets a Langfuse callback on every
team through the admin API from 4 client threads, while a probe thread sends a mock chat call
every 5 ms with a virtual key and records each call's latency. A call's latency above its
baseline is the time the loop could not serve it: the longest one is the worst stall.

    .venv/bin/python bench/callback_churn.py [--teams 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.process import gateway_process
from tests.support.upstream import closed_port

MASTER = "sk-bench-master-key-0123456789"
CONFIG = f"""
model_list:
  - model_name: mock-gpt
    litellm_params: {{model: mock/mock-gpt}}
general_settings: {{master_key: {MASTER}}}
spangate_settings: {{data_dir: DATA}}
"""


def probe(base: str, key: str, stop: threading.Event, out: list[float]) -> None:
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.post("/v1/chat/completions", json=body).raise_for_status()
            out.append(time.perf_counter() - started)
            time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.replace("DATA", str(Path(tmp) / "data")))
        port = closed_port()
        with gateway_process(config, port) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                                         headers={"authorization": f"Bearer {MASTER}"}) as admin:
            # --debug logs every request: drain the pipe, or the gateway blocks writing to it
            threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
            teams = [admin.post("/team/new", json={"team_alias": f"t{i}"}).json()["team_id"]
                     for i in range(args.teams)]
            key = admin.post("/key/generate", json={"team_id": teams[0]}).json()["key"]
            stop, baseline, during = threading.Event(), [], []
            thread = threading.Thread(target=probe, args=(admin.base_url, key, stop, baseline))
            thread.start()
            time.sleep(2)
            stop.set()
            thread.join()
            stop.clear()
            thread = threading.Thread(target=probe, args=(admin.base_url, key, stop, during))
            thread.start()
            sink = f"http://127.0.0.1:{closed_port()}"

            def set_callback(team: str) -> None:
                admin.post(f"/team/{team}/callback", json={
                    "callback_name": "langfuse", "callback_type": "success",
                    "callback_vars": {"langfuse_public_key": "pk", "langfuse_secret_key": "sk-lf",
                                      "langfuse_host": sink}}).raise_for_status()

            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(set_callback, teams))
            churn = time.perf_counter() - started
            stop.set()
            thread.join()
    base_p50 = statistics.median(baseline)
    print(f"teams={args.teams} callbacks set in {churn:.1f}s ({args.teams / churn:.0f}/s)")
    print(f"probe calls: baseline p50 {base_p50 * 1e3:.1f} ms, max {max(baseline) * 1e3:.1f} ms; during churn "
          f"p50 {statistics.median(during) * 1e3:.1f} ms, p99 {statistics.quantiles(during, n=100)[98] * 1e3:.1f} ms, "
          f"max {max(during) * 1e3:.1f} ms -> longest stall ~{(max(during) - base_p50) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
