"""Each hook's background runs as operators see them: ``/metrics`` and ``/health/destinations``.

The counters live in the chain's ``BackgroundRunner`` (``HookStats``, one per hook); the metric is
an observable counter read from them at scrape time, so nothing is added to the request path.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from app.hooks.chain import HookChain

RUNS_METRIC = "spangate.callback.runs"  # rendered as spangate_callback_runs_total{callback, outcome}
OUTCOMES = ("ok", "error", "timeout", "dropped")


def register_hook_metrics(meter: Meter, chain: HookChain) -> None:
    """Per hook and outcome: background runs that finished, raised, overran their timeout, or were
    dropped because too many were pending. Nothing registered when no hook is configured."""
    if not chain:
        return

    def observe(_options: CallbackOptions) -> list[Observation]:
        out = []
        for name, stats in list(chain.runner.stats.items()):
            counts = (stats.runs, stats.errors, stats.timeouts, stats.dropped)
            out.extend(Observation(n, {"callback": name, "outcome": outcome}) for outcome, n in zip(OUTCOMES, counts,
                                                                                                   strict=True))
        return out

    meter.create_observable_counter(RUNS_METRIC, callbacks=[observe], unit="{run}",
                                    description="Background runs of each callback (logging methods, success and "
                                                "failure hooks), by outcome")


def hooks_health(chain: HookChain) -> list[dict[str, Any]]:
    """The ``callbacks`` section of ``/health/destinations``: one entry per configured hook."""
    return [{"name": name, "runs": s.runs, "errors": s.errors, "timeouts": s.timeouts, "dropped": s.dropped,
             "last_error": s.last_error} for name, s in chain.runner.stats.items()]
