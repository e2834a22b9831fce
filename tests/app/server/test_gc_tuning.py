"""The CLI's workers tune the garbage collector once started; apps sharing a process (tests) do not.

Run in a subprocess: the tuning is process-wide and must not leak into this test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_PROBE = """
import gc, json, sys
from pathlib import Path
from litestar.testing import TestClient
from app.config.settings import default_config
from app.server.factory import create_app

before = gc.get_threshold()
app = create_app(default_config(Path(sys.argv[1])), own_process=sys.argv[2] == "own")
with TestClient(app) as client:
    assert client.get("/health/liveliness").status_code == 200
    print(json.dumps({"before": before, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def _probe(tmp_path: Path, mode: str) -> dict[str, list[int] | int]:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / mode), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_process_freezes_start_up_objects_and_raises_the_first_generation(tmp_path: Path) -> None:
    seen = _probe(tmp_path, "own")
    assert seen["threshold"][0] == 10_000 and seen["threshold"] != seen["before"]
    assert seen["frozen"] > 10_000  # modules, config and routes are out of the collector's scans


def test_an_app_sharing_its_process_leaves_the_collector_alone(tmp_path: Path) -> None:
    seen = _probe(tmp_path, "shared")
    assert seen["threshold"] == seen["before"]
    assert seen["frozen"] == 0
