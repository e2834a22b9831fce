"""A worker caps glibc's malloc arenas at two before its threads start, unless the operator set
``MALLOC_ARENA_MAX``. Run in subprocesses: the cap is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Eight threads that each malloc (bytes over pymalloc's 512-byte limit); then glibc's own account of
# its arenas (malloc_info writes one <heap nr=...> per arena).
_PROBE = """
import ctypes, json, sys, tempfile, threading
from app.server.factory import cap_malloc_arenas

capped = cap_malloc_arenas({}) if sys.argv[1] == "cap" else False
gate = threading.Barrier(8)
keep = []

def work():
    gate.wait()  # all at once, as the export threads start
    keep.append([bytes(4096) for _ in range(200)])

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    arenas = open(out.name).read().count("<heap nr=")
print(json.dumps({"capped": capped, "arenas": arenas}))
"""


def _arenas(mode: str) -> dict[str, int | bool]:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cap_keeps_eight_allocating_threads_to_two_arenas() -> None:
    free, capped = _arenas("free"), _arenas("cap")
    assert free["arenas"] > 2  # the control: without the cap each thread gets an arena of its own
    assert capped == {"capped": True, "arenas": 2}


def test_an_operators_malloc_arena_max_wins() -> None:
    from app.server.factory import cap_malloc_arenas

    assert cap_malloc_arenas({"MALLOC_ARENA_MAX": "4"}) is False


_WORKER = """
import json, sys
from pathlib import Path
from litestar.testing import TestClient
import app.server.factory as server
from app.config.settings import default_config

calls = []
cap = server.cap_malloc_arenas
server.cap_malloc_arenas = lambda env: calls.append(cap(env)) or calls[-1]
app = server.create_app(default_config(Path(sys.argv[1])), own_process=sys.argv[2] == "own")
with TestClient(app) as client:
    assert client.get("/health/liveliness").status_code == 200
print(json.dumps(calls))
"""


def test_a_worker_process_caps_its_arenas_and_an_app_sharing_a_process_does_not(tmp_path: Path) -> None:
    seen = {}
    for mode in ("own", "shared"):
        done = subprocess.run([sys.executable, "-c", _WORKER, str(tmp_path / mode), mode], cwd=REPO,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        seen[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"own": [True], "shared": []}
