"""Helpers for tests that drive teams, keys and team callbacks through the real admin API.

``database(kind, tmp_path)`` gives the gateway a store: a SQLite file under ``tmp_path``, or a
fresh schema on the local PostgreSQL (selected with ``SPANGATE_DB_SCHEMA``) dropped afterwards.
``LangfuseProject`` is a loopback Langfuse stand-in with its own key pair.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from openai import OpenAI

from tests.support.otlp import OtlpSink

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
LANGFUSE_TRACES_PATH = "/api/public/otel/v1/traces"
MASTER_KEY = "sk-master-0f3c9a71d2e84b56"
SALT_KEY = "spangate-test-salt-key-5d1e0a9b7c3f"
MODEL = "gpt-4"
OTHER_MODEL = "gpt-4o"
TABLES = ("teams", "keys", "team_callbacks")


def mock_models(*names: str) -> list[dict[str, Any]]:
    return [{"model_name": n, "litellm_params": {"model": f"mock/{n}"}} for n in names or (MODEL, OTHER_MODEL)]


# --- the store -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str
    schema: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"SPANGATE_DB_SCHEMA": self.schema} if self.schema else {}

    def raw_dump(self) -> str:
        """Every stored value of the team tables as text, read past the gateway's store layer."""
        if self.kind == "sqlite":
            return _sqlite_dump(self.url.removeprefix("sqlite:///"))
        assert self.schema is not None
        return asyncio.run(_pg_dump(self.schema))

    def raw_bytes(self) -> bytes:
        """SQLite only: the database file and its WAL, byte for byte (deleted pages included)."""
        path = Path(self.url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _sqlite_dump(path: str) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(repr(row) for table in TABLES for row in conn.execute(f"SELECT * FROM {table}"))


async def _pg_dump(schema: str) -> str:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = [r for table in TABLES for r in await conn.fetch(f'SELECT t::text AS v FROM "{schema}".{table} t')]
    finally:
        await conn.close()
    return "\n".join(r["v"] for r in rows)


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[Database]:
    if kind == "sqlite":
        yield Database("sqlite", f"sqlite:///{(tmp_path / 'teams.db').resolve()}")
        return
    schema = f"spangate_e2e_{secrets.token_hex(6)}"
    try:
        yield Database("postgres", PG_URL, schema)
    finally:
        asyncio.run(_drop_schema(schema))


def gateway_settings(db: Database, **litellm: Any) -> dict[str, Any]:
    """A config with the master key, fast team polling, two mock models and ``db`` as the store."""
    return {"model_list": mock_models(),
            "general_settings": {"master_key": MASTER_KEY, "database_url": db.url},
            "litellm_settings": litellm,
            "spangate_settings": {"team_poll_seconds": 0.2}}


# --- Langfuse stand-ins ----------------------------------------------------------------------------


def langfuse_callback(public_key: str, secret_key: str, host: str | None = None,
                      callback_type: str = "success") -> dict[str, Any]:
    """The seed's ``POST /team/{team_id}/callback`` body, field for field."""
    callback_vars = {"langfuse_public_key": public_key, "langfuse_secret_key": secret_key}
    if host is not None:
        callback_vars["langfuse_host"] = host
    return {"callback_name": "langfuse", "callback_type": callback_type, "callback_vars": callback_vars}


@dataclass
class LangfuseProject:
    """A loopback Langfuse project: the sink plus the key pair that must reach it."""

    name: str
    sink: OtlpSink = field(default_factory=lambda: OtlpSink(path_suffix=LANGFUSE_TRACES_PATH))
    public_key: str = ""
    secret_key: str = ""

    def __post_init__(self) -> None:
        self.public_key = self.public_key or f"pk-lf-{self.name}-{secrets.token_hex(4)}"
        self.secret_key = self.secret_key or f"sk-lf-{self.name}-{secrets.token_hex(8)}"

    @property
    def host(self) -> str:
        return self.sink.url

    @property
    def basic_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()

    def callback_body(self, callback_type: str = "success") -> dict[str, Any]:
        return langfuse_callback(self.public_key, self.secret_key, self.host, callback_type)

    def spans(self) -> list[dict[str, Any]]:
        return self.sink.spans()

    def team_ids(self) -> list[str | None]:
        return [s["attributes"].get("spangate.team.id") for s in self.spans()]

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        self.sink.wait_for(lambda _reqs: predicate(self.spans()), timeout)

    def assert_wire_format(self) -> None:
        """Every request: the OTLP path, this project's Basic auth, ingestion version 4, gzip."""
        assert self.sink.requests, f"project {self.name} received nothing"
        for req in self.sink.requests:
            assert (req.method, req.path) == ("POST", LANGFUSE_TRACES_PATH)
            assert req.headers["authorization"] == self.basic_auth, f"project {self.name} got foreign credentials"
            assert req.headers["x-langfuse-ingestion-version"] == "4"
            assert req.headers["content-encoding"] == "gzip"
            assert req.headers["content-type"] == "application/x-protobuf"


@contextmanager
def langfuse_projects(*names: str) -> Iterator[dict[str, LangfuseProject]]:
    with ExitStack() as stack:
        projects = {name: LangfuseProject(name) for name in names}
        for project in projects.values():
            stack.enter_context(project.sink)
        yield projects


def operator_env(project: LangfuseProject) -> dict[str, str]:
    """The global ``success_callback: ["langfuse"]`` form reads these."""
    return {"LANGFUSE_PUBLIC_KEY": project.public_key, "LANGFUSE_SECRET_KEY": project.secret_key,
            "LANGFUSE_HOST": project.host, "SPANGATE_SALT_KEY": SALT_KEY}


# --- clients ---------------------------------------------------------------------------------------


def loopback_client(**kwargs: Any) -> httpx.Client:
    # verify=False: every URL here is plain http on loopback, and loading the CA bundle costs ~0.1 s
    # per client, which is most of a test's time when each call makes one.
    return httpx.Client(timeout=10, trust_env=False, verify=False, **kwargs)


def admin_client(base_url: str, key: str | None = MASTER_KEY) -> httpx.Client:
    return loopback_client(base_url=base_url, headers={"Authorization": f"Bearer {key}"} if key else {})


def openai_client(base_url: str, key: str) -> OpenAI:
    return OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=10,
                  http_client=loopback_client())


def chat(base_url: str, key: str, model: str = MODEL, **metadata: Any) -> httpx.Response:
    """A raw chat call, for tests that look at status codes and error bodies."""
    with loopback_client() as client:
        return client.post(f"{base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                           json={"model": model, "messages": [{"role": "user", "content": "hi"}],
                                 "metadata": metadata})


def poll(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI error object of a response that must have ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    return body["error"]


def ok(response: httpx.Response) -> Any:
    """The JSON of an admin answer that must be 200."""
    assert response.status_code == 200, response.text
    return response.json()


def new_team(admin: httpx.Client, **body: Any) -> str:
    return ok(admin.post("/team/new", json=body))["team_id"]


def new_key(admin: httpx.Client, **body: Any) -> str:
    return ok(admin.post("/key/generate", json=body))["key"]
