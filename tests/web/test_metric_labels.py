"""Every Prometheus label value comes from a closed set: no request, however odd, adds a label
set that the code does not name (unknown methods, unmatched paths, tenants' purpose keys)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from consent_api.web import metrics

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}


def label_values(metric: str, label: str) -> set[str]:
    return {sample.labels[label] for family in REGISTRY.collect() if family.name == metric
            for sample in family.samples if label in sample.labels}


def label_sets(metric: str) -> int:
    return len({tuple(sorted(sample.labels.items())) for family in REGISTRY.collect()
                if family.name == metric for sample in family.samples})


def test_odd_methods_and_paths_collapse_to_one_label_value(client):
    for n in range(300):
        client.open(f"/no/such/path/{n}", method=f"M{n}X")
        client.open("/healthz", method=f"BREW{n}")
        client.open(f"/v1/subjects/u{n}/consents", method="PROPFIND")
    assert label_values("consent_api_http_requests", "method") <= KNOWN_METHODS
    assert label_values("consent_api_http_request_duration_seconds", "method") <= KNOWN_METHODS
    routes = label_values("consent_api_http_requests", "route")
    assert not any("/no/such" in r or "/u1/" in r for r in routes), routes
    before, cached = label_sets("consent_api_http_requests"), len(metrics._CHILDREN)
    for n in range(300, 600):
        client.open(f"/other/{n}", method=f"Q{n}")
    assert label_sets("consent_api_http_requests") == before
    assert len(metrics._CHILDREN) == cached  # the per-label-set cache does not grow either


def test_purpose_label_values_are_capped(tenant, monkeypatch):
    monkeypatch.setattr(metrics, "MAX_PURPOSE_LABELS", 3)
    monkeypatch.setattr(metrics, "_PURPOSES", set())
    for n in range(6):
        tenant.purpose(f"p{n}")
        tenant.grant(f"s{n}", f"p{n}")
    purposes = label_values("consent_api_decisions", "purpose")
    assert {"p0", "p1"} <= purposes and not {"p3", "p4", "p5"} & purposes  # the rest fold into one
    assert metrics.OTHER in purposes

