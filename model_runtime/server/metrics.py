"""Prometheus metrics of one server, in its own CollectorRegistry (no process-global state).

Request-side metrics (requests, tokens, latencies) are recorded by the handlers; engine-side
figures (KV blocks, speculative drafts, queue lengths) are read from `engine.stats()` at scrape
time by a custom collector, so they are always current.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "model_runtime"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# engine.stats() key -> (metric name without the prefix, help)
ENGINE_GAUGES = {
    "kv_blocks_total": ("kv_blocks_total", "KV cache blocks in the pool"),
    "kv_blocks_used": ("kv_blocks_used", "KV cache blocks held by requests or the prefix cache"),
    "kv_blocks_free": ("kv_blocks_free", "KV cache blocks free for allocation"),
    "kv_cache_bytes_per_token": ("kv_cache_bytes_per_token", "bytes of latent KV cache per token"),
    "num_running": ("num_requests_running", "requests being decoded or prefilled"),
    "num_waiting": ("num_requests_waiting", "requests waiting for KV blocks or a batch slot"),
}
ENGINE_COUNTERS = {
    "spec_tokens_proposed": ("spec_decode_draft_tokens", "MTP draft tokens proposed"),
    "spec_tokens_accepted": ("spec_decode_accepted_tokens", "MTP draft tokens accepted"),
    "prefix_cache_queried_tokens": ("prefix_cache_queries", "prompt tokens looked up in the prefix cache"),
    "prefix_cache_hit_tokens": ("prefix_cache_hits", "prompt tokens found in the prefix cache"),
}


class EngineStatsCollector(Collector):
    """Reads `stats()` on every scrape and exposes the known keys as gauges and counters."""

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for key, (name, documentation) in ENGINE_GAUGES.items():
            if key in stats:
                yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=float(stats[key]))
        for key, (name, documentation) in ENGINE_COUNTERS.items():
            if key in stats:
                yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=float(stats[key]))


class ServerMetrics:
    """All metrics of one app; `render()` gives the Prometheus text exposition."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, engine_stats: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.prompt_tokens = Counter(f"{PREFIX}_prompt_tokens", "prompt tokens processed", registry=self.registry)
        self.generation_tokens = Counter(f"{PREFIX}_generation_tokens", "tokens generated", registry=self.registry)
        self.time_to_first_token = Histogram(
            f"{PREFIX}_time_to_first_token_seconds", "time from request arrival to its first generated token",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inter_token_latency = Histogram(
            f"{PREFIX}_inter_token_latency_seconds", "time between consecutive generated tokens of a request",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(EngineStatsCollector(engine_stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)
