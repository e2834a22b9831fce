"""A PostgreSQL server of the test's own, for tests that stop and restart the store.

The shared server on 5432 must never be stopped, so outage tests start a throwaway cluster with
Debian's ``initdb`` / ``pg_ctl`` on a free loopback port, in a temporary directory owned by the
``postgres`` user (initdb refuses to run as root), trust authentication, and its unix socket in
that directory so it never collides with the system's.

    with temporary_postgres() as pg:
        ...  # pg.url
        pg.stop()     # as a crash: pg_ctl stop -m immediate
        pg.start()    # same data, same port

``fresh_database()`` is the lighter kind: an empty database of its own on the shared server.
"""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.support.upstream import closed_port

PG_USER = "postgres"
DATABASE = "spangate"
COMMAND_TIMEOUT = 60.0


def pg_bin(name: str) -> str:
    """``initdb``, ``pg_ctl``, ``createdb``: on PATH, else in Debian's versioned directory."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        pytest.fail(f"{name} not found: install Debian's postgresql package to run the outage tests")
    return found


class TemporaryPostgres:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *argv: str) -> None:
        # runuser, not sudo: we are root, and the server must belong to the postgres user.
        done = subprocess.run(["runuser", "-u", PG_USER, "--", *argv], capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}{done.stdout}\n{log}")

    def init(self) -> None:
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start()
        self._run(pg_bin("createdb"), "-h", str(self.root), "-p", str(self.port), "-U", PG_USER, DATABASE)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_bin("pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server goes away as in a crash, open connections cut."""
        self._run(pg_bin("pg_ctl"), "stop", "-w", "-D", str(self.data), "-m", mode)


@contextmanager
def temporary_postgres() -> Iterator[TemporaryPostgres]:
    root = Path(tempfile.mkdtemp(prefix="spangate-pg-"))
    shutil.chown(root, PG_USER, PG_USER)
    os.chmod(root, 0o700)
    server = TemporaryPostgres(root, closed_port())
    try:
        server.init()
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[TemporaryPostgres]:
    """A fresh server per test; import it into the test module to use it."""
    with temporary_postgres() as server:
        yield server


SHARED_SERVER = "postgresql://postgres@127.0.0.1:5432"  # trust auth; its ``test`` database is the maintenance one


async def _admin_execute(statement: str) -> None:
    conn = await asyncpg.connect(f"{SHARED_SERVER}/test")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the shared server for one test, dropped after it; yields its URL."""
    name = f"spangate_t_{secrets.token_hex(6)}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{SHARED_SERVER}/{name}"
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
