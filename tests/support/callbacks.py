"""Users' callback files for tests: the seed's ``custom_callbacks.py`` (import lines changed) and a
recorder that keeps what each of a handler's methods received, so tests assert fields, not prints.

The seed is kept as text (``callback_files/seed_custom_callbacks.py.txt``): it is the user's file
as the docs print it, not code of ours to lint.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.custom_logger import overridden

SEED = Path(__file__).parent / "callback_files" / "seed_custom_callbacks.py.txt"
RECORD_LINES = ("\n# added by the test: keep what each method receives (the seed only prints it)\n"
                "from tests.support.callbacks import record\n"
                "proxy_handler_instance = record(proxy_handler_instance)\n")


def write_seed(folder: Path, *, recorded: bool = True) -> Path:
    """``folder/custom_callbacks.py``: the seed, with the recorder appended unless ``recorded`` is False."""
    path = folder / "custom_callbacks.py"
    path.write_text(SEED.read_text() + (RECORD_LINES if recorded else ""))
    return path


@dataclass
class Recorded:
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, method: str, args: tuple[Any, ...]) -> None:
        with self.changed:
            self.calls.append((method, args))
            self.changed.notify_all()

    def of(self, method: str) -> list[tuple[Any, ...]]:
        with self.changed:
            return [args for name, args in self.calls if name == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len([1 for name, _ in self.calls if name == method]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({name for name, _ in self.calls})
                    raise AssertionError(f"{method} called fewer than {count} times within {timeout}s; seen: {seen}")
                self.changed.wait(left)
        return self.of(method)


def record(handler: Any) -> Any:
    """A copy of ``handler`` (same state) whose overridden methods first record their arguments
    and then run the handler's own code; the record is ``.recorded``."""
    cls = type(handler)
    recorded = Recorded()
    wrappers = {name: _recording(getattr(cls, name), name, recorded) for name in overridden(handler)}
    recording_cls = type(cls.__name__, (cls,), wrappers)
    copy = object.__new__(recording_cls)
    copy.__dict__.update(vars(handler))
    copy.recorded = recorded
    return copy


def _recording(method: Any, name: str, recorded: Recorded) -> Any:
    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def async_wrapper(self: Any, *args: Any) -> Any:
            recorded.add(name, args)
            return await method(self, *args)

        return async_wrapper

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        recorded.add(name, args)
        return method(self, *args)

    return wrapper
