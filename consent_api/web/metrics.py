"""Prometheus metrics: HTTP requests per route, consent events by purpose and action, store latency.

Every label value comes from a closed set, whatever a client sends: ``method`` is one of the
methods the API answers or ``OTHER``; ``route`` is the URL rule
(``/v1/subjects/<subject_id>/consents``), never the path, or ``<unmatched>``; ``status`` is a
code the app answered with; ``operation`` is a Store method and ``error`` an exception class;
``action`` is one of the ledger's actions; ``purpose`` is a catalog key, and after
MAX_PURPOSE_LABELS distinct keys in a process (tenants define purposes) the others count as
``OTHER``. Each label set costs memory in every worker and a file entry under multiprocess mode
for as long as the process lives, so no label may take a value from a request.

Several processes answer requests under ``consent-api serve`` (granian workers). serve points
``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before they start; prometheus_client then
keeps each worker's samples in files there, and /metrics, whichever worker answers it, adds
up the files of every worker. Without that variable (tests, ``flask run``) the process's own
registry is served.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consent_api.services import webhooks
from consent_api.services.deps import Deps
from consent_api.store.port import Store

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"  # 404s and 405s: no rule matched, so no template to name
OTHER = "OTHER"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_PURPOSE_LABELS = 500
_PURPOSES: set[str] = set()

REQUESTS = Counter("consent_api_http_requests_total", "HTTP requests answered, by route template.",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "consent_api_http_request_duration_seconds",
    "Time from the request reaching Flask to its response (streamed bodies not included).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
DECISIONS = Counter("consent_api_decisions_total",
                    "Consent events durably written, by purpose and action (grant, deny, withdraw, prompt).",
                    ["purpose", "action"])
STORE_SECONDS = Histogram(
    "consent_api_store_operation_duration_seconds",
    "Time spent inside the store, by Store method (for streams: inside the store's own steps).",
    ["operation"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
             1.0, 2.5, 5.0))
STORE_ERRORS = Counter("consent_api_store_errors_total", "Store operations that raised, by method and error.",
                       ["operation", "error"])


class TimedStore(Store):
    """A Store whose every public method is timed into STORE_SECONDS; appends count DECISIONS.

    A Store that forwards to another rather than a subclass of each adapter, so the services
    never see prometheus; the forwarders are made below from the port's own list of methods,
    so a method added to the port is timed without being listed here."""

    def __init__(self, store: Store):
        self._store = store

    @property
    def inner(self) -> Store:
        return self._store

    def _timed(self, name: str) -> Callable[..., Any]:
        attr = getattr(self._store, name)
        timed = _timed_stream(name, attr) if inspect.isgeneratorfunction(attr) else _timed_call(name, attr)
        self.__dict__[name] = timed  # built once per method; from now on found before the forwarder
        return timed

    def __getattr__(self, name: str) -> Any:
        """What the adapter has beyond the port (path, schema_version, db, shard …), as it is."""
        return getattr(self._store, name)


def _forwarder(name: str) -> Callable[..., Any]:
    def forward(self: TimedStore, *args: Any, **kwargs: Any) -> Any:
        return self._timed(name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward


for _name in [n for n in dir(Store) if not n.startswith("_") and inspect.isfunction(getattr(Store, n))]:
    setattr(TimedStore, _name, _forwarder(_name))
TimedStore.__abstractmethods__ = frozenset()
del _name


def timed(store: Store) -> Store:
    """store, every port method timed."""
    return TimedStore(store)  # type: ignore[abstract]  # the forwarders above implement every method


def _timed_call(name: str, method: Callable) -> Callable:
    observe = STORE_SECONDS.labels(name).observe

    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            STORE_ERRORS.labels(name, type(exc).__name__).inc()
            raise
        finally:
            observe(time.perf_counter() - started)
        if name == "append":
            _count_decisions(result.events)
        return result
    return call


def _timed_stream(name: str, method: Callable) -> Callable:
    observe = STORE_SECONDS.labels(name).observe

    def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
        spent = 0.0  # time inside the store, not the time the consumer takes between items
        items = method(*args, **kwargs)
        try:
            while True:
                started = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    spent += time.perf_counter() - started
                    return
                except Exception as exc:
                    STORE_ERRORS.labels(name, type(exc).__name__).inc()
                    raise
                spent += time.perf_counter() - started
                yield item
        finally:
            items.close()
            observe(spent)
    return stream


def _count_decisions(events: list[dict[str, Any]]) -> None:
    for event in events:
        if event.get("purpose"):
            DECISIONS.labels(_purpose_label(event["purpose"]), event["action"]).inc()


def _purpose_label(purpose: str) -> str:
    if purpose in _PURPOSES:
        return purpose
    if len(_PURPOSES) < MAX_PURPOSE_LABELS:
        _PURPOSES.add(purpose)
        return purpose
    return OTHER


def method_label(method: str) -> str:
    """The method as a label: one the API answers, else OTHER."""
    return method if method in METHODS else OTHER


def exposition(deps: Deps | None = None) -> tuple[bytes, str]:
    """The metrics text and its content type: every worker's samples under serve, and, given
    the app's deps, the webhook deliveries as the store counts them."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if deps is not None:
        webhooks_registry = CollectorRegistry()
        webhooks_registry.register(WebhookCollector(deps))
        text += generate_latest(webhooks_registry)
    return text, CONTENT_TYPE_LATEST


class WebhookCollector(Collector):
    """Read from the store at each scrape, so the figures are the same whichever process
    answers and wherever the delivery worker runs (serve's child, or `consent-api worker`).
    The lag names at most webhooks.MAX_LAG_LABELS endpoints, those furthest behind."""

    def __init__(self, deps: Deps):
        self.deps = deps

    def collect(self) -> Iterator[Metric]:
        counts = webhooks.delivery_counts(self.deps)
        attempts = CounterMetricFamily("consent_api_webhook_deliveries",
                                       "Webhook delivery attempts recorded, by outcome.", labels=["status"])
        for status in ("delivered", "failed"):
            attempts.add_metric([status], counts.get(status, 0))
        yield attempts
        lag = GaugeMetricFamily("consent_api_webhook_lag_seconds",
                                "Age of the oldest event not yet delivered to an enabled endpoint.",
                                labels=["webhook_id"])
        for webhook_id, seconds in webhooks.lags(self.deps):
            lag.add_metric([webhook_id], seconds)
        yield lag


def route() -> str:
    """The matched URL rule, never the raw path (which may hold a subject id)."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


# The labelled children, made once per (method, route, status): labels() takes a lock and builds
# its key on every call.
_CHILDREN: dict[tuple[str, str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}


def count_request(method: str, rule: str, status: int, seconds: float | None) -> None:
    """One answered request: its count, and its duration when known."""
    method = method_label(method)
    key = (method, rule, status)
    pair = _CHILDREN.get(key)
    if pair is None:
        pair = _CHILDREN[key] = (REQUESTS.labels(method, rule, str(status)).inc,
                                 REQUEST_SECONDS.labels(method, rule).observe)
    pair[0]()
    if seconds is not None:
        pair[1](seconds)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count_request(response):
        started = g.get("metrics_started")
        count_request(request.method, route(), response.status_code,
                      time.perf_counter() - started if started is not None else None)
        return response
