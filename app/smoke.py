"""``spangate --test``: one chat request to a running gateway, printed, as ``litellm --test`` does."""

from __future__ import annotations

import sys

import httpx


def run_test(base_url: str, api_key: str | None, model: str | None) -> int:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    base = base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False) as client:
            if model is None:
                listed = client.get("/v1/models")
                if listed.status_code != 200:  # reached, but refused (a missing key): say so, not "cannot reach"
                    print(f"spangate --test: HTTP {listed.status_code} from GET /v1/models: {listed.text}",
                          file=sys.stderr)
                    return 1
                models = [m["id"] for m in listed.json()["data"]]
                if not models:
                    print("spangate --test: the gateway lists no models", file=sys.stderr)
                    return 1
                model = models[0]
            print(f"spangate --test: POST {base}/v1/chat/completions model={model}")
            prompt = [{"role": "user", "content": "this is a test request, write a short poem"}]
            reply = client.post("/v1/chat/completions", json={"model": model, "messages": prompt})
    except httpx.HTTPError as exc:
        print(f"spangate --test: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    if reply.status_code != 200:
        print(f"spangate --test: HTTP {reply.status_code}: {reply.text}", file=sys.stderr)
        return 1
    body = reply.json()
    print(body["choices"][0]["message"]["content"])
    print(f"usage: {body.get('usage')}")
    return 0
