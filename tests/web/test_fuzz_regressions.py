"""Inputs that once broke the service, found while fuzzing it; each stays a 4xx (or a valid 2xx)."""

from __future__ import annotations

import pytest

from tests.builders import consents, decision
from tests.support.api import bearer


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:00"])
def test_a_timestamp_outside_the_utc_years_is_422_not_500(api, app_tenant, at):
    api.post("/v1/subjects/u-1/consents", json=consents(decision("location")), token=app_tenant.writer,
             expect=201)
    response = api.get(f"/v1/subjects/u-1/consents?at={at.replace('+', '%2B')}", token=app_tenant.reader)
    assert response.status_code == 422
    assert "at" in response.get_json()["errors"]
    api.post("/v1/policies", json={"version": "late", "effective_at": at}, token=app_tenant.admin, expect=422)
    api.post("/v1/subjects/u-1/consents", json=consents(decision("location"), occurred_at=at),
             token=app_tenant.writer, expect=422)


def test_a_policy_in_year_one_is_answered_in_rfc_3339(api, app_tenant):
    policy = api.post("/v1/policies", json={"version": "ancient", "effective_at": "0001-01-01T00:00:00Z"},
                      token=app_tenant.admin, expect=201).get_json()
    assert policy["effective_at"] == "0001-01-01T00:00:00.000000Z"
    api.get("/v1/policies", token=app_tenant.reader, expect=200)


@pytest.mark.parametrize("value", ["2026-03-01T08:00Z", "20260301T080000Z", "2026-03-01 08:00:00Z",
                                   "2026-W09-1T08:00:00Z", "2026-03-01T08:00:00"])
def test_timestamps_must_be_rfc_3339(api, app_tenant, value):
    api.post("/v1/policies", json={"version": "v2", "effective_at": value}, token=app_tenant.admin, expect=422)


def test_a_trailing_newline_never_passes_a_pattern(api, app_tenant):
    """Python's `$` matches before a final newline; keys, ids and versions must not end in one."""
    admin, writer = app_tenant.admin, app_tenant.writer
    title = {"en": "Push"}
    api.put("/v1/purposes/push%0A", json={"kind": "processing", "title": title}, token=admin, expect=422)
    api.put("/v1/purposes/push", json={"kind": "processing", "title": {"en\n": "Push"}}, token=admin, expect=422)
    api.post("/v1/policies", json={"version": "v9\n"}, token=admin, expect=422)
    api.post("/v1/policies", json={"version": "v9", "sha256": "a" * 64 + "\n"}, token=admin, expect=422)
    api.post("/v1/subjects/u-1%0A/consents", json=consents(decision("location")), token=writer, expect=422)
    api.post("/v1/subjects/u-1/consents", json=consents(decision("location"), policy_version="2026-01\n"),
             token=writer, expect=422)
    assert [p["key"] for p in api.get("/v1/purposes", token=app_tenant.reader).get_json()["items"]
            if "\n" in p["key"]] == []


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/purposes", "/v1/policies", "/v1/vendors",
                                  "/v1/audiences/location", "/v1/subjects/u-1/history"])
def test_an_empty_cursor_is_the_first_page(api, app_tenant, path):
    api.post("/v1/subjects/u-1/consents", json=consents(decision("location")), token=app_tenant.writer,
             expect=201)
    first = api.get(path, token=app_tenant.admin, expect=200).get_json()
    assert api.get(f"{path}?cursor=", token=app_tenant.admin, expect=200).get_json() == first


def test_dot_segments_are_neither_subject_ids_nor_policy_versions(api, app_tenant):
    """A client sends /v1/subjects/../consents as /v1/consents: such ids could be written
    (percent-encoded) but never read back."""
    for dots in ("%2E", "%2E%2E"):  # openapi-core would resolve the dot segments; check by hand
        response = api.client.post(f"/v1/subjects/{dots}/consents", json=consents(decision("location")),
                                   headers=bearer(app_tenant.writer))
        assert response.status_code == 422 and "subject_id" in response.get_json()["errors"]
    api.post("/v1/policies", json={"version": ".."}, token=app_tenant.admin, expect=422)
    api.post("/v1/subjects/.../consents", json=consents(decision("location")),
             token=app_tenant.writer, expect=201)  # three dots are an ordinary id


def test_an_empty_export_format_is_refused_not_defaulted(api, app_tenant):
    for path in ("/v1/audit/events?format=", "/v1/audit/manifest?format="):
        response = api.get(path, token=app_tenant.auditor, expect=422)
        assert "format" in response.get_json()["errors"]
