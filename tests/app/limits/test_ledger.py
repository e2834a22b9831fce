"""The spend journal: rows survive a kill -9 and a store outage, and reach the store exactly once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.limits.ledger import SUFFIX, SpendLedger
from app.store import Store
from tests.app.limits.conftest import KEY_HASH, spend_row
from tests.support.postgres import TemporaryPostgres, fresh_database, own_postgres  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[3]
WRITER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from app.limits.ledger import SpendLedger
    from app.store import Store
    from tests.app.limits.conftest import spend_row

    async def main(db, directory):
        store = await Store.open(db)
        ledger = SpendLedger(store, Path(directory), flush_seconds=3600, rotate_bytes=20_000)
        await ledger.start()
        for i in range(150):
            ledger.record(spend_row(f"r{i}", 1_000 + i))
        await ledger.flush()                  # some rows reach the store before the kill ...
        for i in range(150, 300):
            ledger.record(spend_row(f"r{i}", 1_000 + i))  # ... and these only the journal
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")
EXPECTED = sum(1_000 + i for i in range(300))


async def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def journals(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a database of its own on the shared PostgreSQL (a sync fixture: fresh_database
    runs its own event loop)."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    with fresh_database() as url:
        yield url


async def test_rows_of_a_process_killed_with_sigkill_are_replayed_once(database: str, tmp_path: Path) -> None:
    db, directory = database, tmp_path / "spend"
    store = await Store.open(db)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db, str(directory)], cwd=ROOT,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert await store.spend_total(team_id="t1") == (150, sum(1_000 + i for i in range(150)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(journals(directory)) >= 2  # rotated at 20 kB: the rows span several files
        ledger = SpendLedger(store, directory)
        await ledger.start()  # replays the dead process's files
        await ledger.close()
        assert await store.spend_total(team_id="t1") == (300, EXPECTED)
        assert await store.period_spend([(f"key:{KEY_HASH}", 0)]) == {(f"key:{KEY_HASH}", 0): EXPECTED}
        assert journals(directory) == []
        again = SpendLedger(store, directory)
        await again.start()
        await again.close()
        assert await store.spend_total(team_id="t1") == (300, EXPECTED)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        await store.close()


async def test_a_live_process_journal_is_left_alone(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "store.db"))
    one = SpendLedger(store, tmp_path / "spend", flush_seconds=3600)
    two = SpendLedger(store, tmp_path / "spend", flush_seconds=3600)
    await one.start()
    await two.start()
    try:
        one.record(spend_row("mine", 7))
        assert await two.replay() == 0  # one holds its file's lock
        assert await store.spend_total(team_id="t1") == (0, 0)
        assert one.pending == 1
        await one.flush()
        assert (one.pending, await store.spend_total(team_id="t1")) == (0, (1, 7))
    finally:
        await one.close()
        await two.close()
        await store.close()
    assert journals(tmp_path / "spend") == []  # both fully recorded: nothing left behind


async def test_rotated_files_are_deleted_once_recorded(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "store.db"))
    ledger = SpendLedger(store, tmp_path / "spend", flush_seconds=3600, rotate_bytes=2_000)
    await ledger.start()
    try:
        for i in range(40):
            ledger.record(spend_row(f"r{i}", 1))
        assert len(journals(tmp_path / "spend")) > 3
        await ledger.flush()
        assert len(journals(tmp_path / "spend")) == 1  # only the file it writes now
        assert await store.spend_total(team_id="t1") == (40, 40)
    finally:
        await ledger.close()
        await store.close()


@pytest.mark.postgres
async def test_a_store_down_and_back_records_every_row_once(own_postgres: TemporaryPostgres, tmp_path: Path,  # noqa: F811
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store = await Store.open(own_postgres.url, connect_timeout=1.0)
    ledger = SpendLedger(store, tmp_path / "spend", flush_seconds=0.02)
    await ledger.start()
    try:
        with caplog.at_level(logging.INFO, logger="spangate.limits.ledger"):
            ledger.record(spend_row("before", 5))
            await wait_until(lambda: ledger.pending == 0)
            own_postgres.stop()
            for i in range(50):
                ledger.record(spend_row(f"r{i}", 10 + i))
            await wait_until(lambda: not ledger.store_healthy)
            own_postgres.start()
            await wait_until(lambda: ledger.pending == 0 and ledger.store_healthy)
        logged = [r.levelname for r in caplog.records if r.name == "spangate.limits.ledger"]
        assert logged == ["WARNING", "INFO"]
        assert await store.spend_total(team_id="t1") == (51, 5 + sum(10 + i for i in range(50)))
        assert await store.period_spend([("team:t1", 0)]) == {("team:t1", 0): 5 + sum(10 + i for i in range(50))}
    finally:
        await ledger.close()
        await store.close()
