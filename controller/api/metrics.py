"""Prometheus metrics of the controller, in the text exposition format (no client library).

The API records request latency per route itself; other parts fill the rest through
`gauge(...)` callbacks (job queue depth, agents last seen) and `count(...)` (scan results by
status, re-activations by outcome), so `/metrics` lists every family even before it has data.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Labels = tuple[tuple[str, str], ...]
GaugeSource = Callable[[], Awaitable[Iterable[tuple[dict[str, str], float]]]]
"""An async callable read at each scrape (it may query the store)."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


@dataclass(slots=True)
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    samples: int = 0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            self.counts[index] += 1
        self.total += seconds
        self.samples += 1


COUNTERS = {
    "polyfleet_scan_results_total": "devices scanned through the controller, by result status",
    "polyfleet_reactivations_total": "re-activations finished through the controller, by outcome",
    "polyfleet_response_cache_total": "cacheable API reads by route and result (hit; joined: "
    "waited for the same answer being computed; miss; bypass: not cacheable)",
}
CACHE_COUNTER = "polyfleet_response_cache_total"
GAUGES = {
    "polyfleet_job_queue_depth": "jobs waiting to be claimed, by kind and site",
    "polyfleet_agent_last_seen_seconds": "Unix time an agent was last heard from, by agent",
}


class Metrics:
    """One process's metrics."""

    def __init__(self) -> None:
        self._latency: dict[Labels, _Histogram] = {}
        self._counters: dict[str, dict[Labels, float]] = {name: {} for name in COUNTERS}
        self._gauges: dict[str, GaugeSource] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (("method", method), ("route", route), ("status", str(status)))
        self._latency.setdefault(key, _Histogram()).observe(seconds)

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a counter of COUNTERS: `count("polyfleet_scan_results_total", status="ok")`."""
        family = self._counters[name]
        key = tuple(sorted(labels.items()))
        family[key] = family.get(key, 0) + amount

    def gauge(self, name: str, source: GaugeSource) -> None:
        """Let `await source()` give the samples of the gauge `name` (of GAUGES) at scrape."""
        if name not in GAUGES:
            raise KeyError(f"unknown gauge {name!r}; add it to GAUGES with its help text")
        self._gauges[name] = source

    async def render(self) -> str:
        lines = [
            "# HELP polyfleet_http_request_duration_seconds API request latency by route",
            "# TYPE polyfleet_http_request_duration_seconds histogram",
        ]
        name = "polyfleet_http_request_duration_seconds"
        for labels, histogram in sorted(self._latency.items()):
            cumulative = 0
            for bound, count in zip(BUCKETS, histogram.counts, strict=True):
                cumulative += count
                le = (("le", _number(bound)),)
                lines.append(f"{name}_bucket{_labels(labels, le)} {cumulative}")
            inf = (("le", "+Inf"),)
            lines.append(f"{name}_bucket{_labels(labels, inf)} {histogram.samples}")
            lines.append(f"{name}_sum{_labels(labels)} {histogram.total!r}")
            lines.append(f"{name}_count{_labels(labels)} {histogram.samples}")
        for counter, help_text in COUNTERS.items():
            lines += [f"# HELP {counter} {help_text}", f"# TYPE {counter} counter"]
            for labels, value in sorted(self._counters[counter].items()):
                lines.append(f"{counter}{_labels(labels)} {_number(value)}")
        for gauge, help_text in GAUGES.items():
            lines += [f"# HELP {gauge} {help_text}", f"# TYPE {gauge} gauge"]
            source = self._gauges.get(gauge)
            for sample, value in await source() if source else ():
                lines.append(f"{gauge}{_labels(tuple(sorted(sample.items())))} {_number(value)}")
        return "\n".join(lines) + "\n"
