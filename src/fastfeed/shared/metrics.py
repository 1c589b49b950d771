"""Prometheus metrics of a hub, served as text by ``prometheus-client``.

Nothing here touches the receive path: counters and gauges are read from the feed's own counters
when Prometheus scrapes, and a background thread folds the ring's new records into the latency
histogram (receive time minus the frame's currentTs) twice a second, with its own ring cursor.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt

from fastfeed.errors import FastfeedError

log = logging.getLogger(__name__)

# Seconds. Upstox's currentTs has millisecond resolution, so nothing finer.
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
FOLD_INTERVAL = 0.5


class LagHistogram:
    """Receive time minus currentTs of every ring record it reads, bucketed."""

    def __init__(self, store: Any) -> None:
        self._reader = store.reader()
        self._edges = np.array(LAG_BUCKETS)
        self._counts: npt.NDArray[np.int64] = np.zeros(len(LAG_BUCKETS) + 1, dtype=np.int64)  # the last: above them all
        self._sum = 0.0
        self.skipped = 0  # records the ring overwrote before a fold got to them
        self._lock = threading.Lock()

    def fold(self) -> None:
        records, missed = self._reader.read()
        sent = records["server_ts"]
        mask = sent > 0
        lag = records["recv_ns"][mask] / 1e9 - sent[mask] / 1e3
        index = np.searchsorted(self._edges, lag, side="left")
        with self._lock:
            self.skipped += int(missed)
            self._counts += np.bincount(index, minlength=len(self._counts))
            self._sum += float(lag.sum())

    def buckets(self) -> tuple[list[tuple[str, float]], float]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        labels = [repr(b) for b in LAG_BUCKETS] + ["+Inf"]
        return [(le, float(c)) for le, c in zip(labels, cumulative)], total


class HubCollector:
    """A prometheus-client collector over a MarketFeed (shared or not)."""

    def __init__(self, feed: Any, lag: LagHistogram) -> None:
        self.feed = feed
        self.lag = lag
        self.share = feed.share or ""

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            HistogramMetricFamily)

        stats = self.feed.stats()
        labels = ["share"]
        value = [self.share]
        for name, key, doc in (
            ("fastfeed_frames", "frames", "WebSocket frames decoded"),
            ("fastfeed_updates", "updates", "instrument updates written to the store"),
            ("fastfeed_bytes", "bytes", "payload bytes decoded"),
            ("fastfeed_decode_errors", "decode_errors", "frames the feed could not use"),
            ("fastfeed_reconnects", "reconnects", "connections opened after the first"),
            ("fastfeed_ring_overruns", "ring_overruns",
             "updates lost by in-process updates() consumers a ring behind"),
        ):
            family = CounterMetricFamily(name, doc, labels=labels)
            family.add_metric(value, float(stats[key]))
            yield family
        for name, number, doc in (
            ("fastfeed_connected", float(self.feed.connected), "1 while the upstream is open"),
            ("fastfeed_instruments", float(stats["instruments"]), "instruments in the store"),
            ("fastfeed_subscriptions", float(stats["subscriptions"]), "keys subscribed upstream"),
            ("fastfeed_readers_attached", float(stats.get("readers", 0)),
             "reader processes on the control socket"),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            gauge.add_metric(value, number)
            yield gauge
        buckets, total = self.lag.buckets()
        hist = HistogramMetricFamily("fastfeed_receive_lag_seconds",
                                     "receive time minus the frame's currentTs", labels=labels)
        hist.add_metric(value, buckets, total)
        yield hist


class MetricsServer:
    """``--metrics-port``: an HTTP endpoint with the hub's metrics, and the fold thread."""

    def __init__(self, feed: Any, port: int, host: str = "127.0.0.1") -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise FastfeedError("metrics need prometheus-client: pip install 'fastfeed[shared]'") \
                from None

        self.lag = LagHistogram(feed.store)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HubCollector(feed, self.lag))
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = self._server.server_port
        self._stop = threading.Event()
        self._folder = threading.Thread(target=self._fold, name="fastfeed-metrics", daemon=True)
        self._folder.start()
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    def _fold(self) -> None:
        while not self._stop.wait(FOLD_INTERVAL):
            try:
                self.lag.fold()
            except Exception:  # never take the hub down for a metric
                log.exception("folding the latency histogram failed")

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._folder.join(2.0)
