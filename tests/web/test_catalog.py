from tests import builders


def test_put_purpose_creates_then_replaces(tenant):
    created = tenant.put("/v1/purposes/location", builders.make_purpose("device_permission"))
    assert created.status_code == 201
    replaced = tenant.put("/v1/purposes/location",
                          builders.make_purpose("device_permission", reprompt_after_hours=72.5))
    assert replaced.status_code == 200 and replaced.json["reprompt_after_hours"] == 72.5
    assert tenant.get("/v1/purposes/location").json["title"]["zh-CN"] == "个性化推送"


def test_purpose_validation(tenant):
    bad_key = tenant.put("/v1/purposes/Bad Key", builders.make_purpose())
    assert bad_key.status_code == 422
    unknown = tenant.put("/v1/purposes/x", {**builders.make_purpose(), "colour": "red"})
    assert unknown.status_code == 422 and "colour" in unknown.json["errors"]
    no_title = tenant.put("/v1/purposes/x", {"kind": "processing"})
    assert no_title.status_code == 422 and "title" in no_title.json["errors"]
    bad_kind = tenant.put("/v1/purposes/x", builders.make_purpose("telepathy"))
    assert bad_kind.status_code == 422 and "kind" in bad_kind.json["errors"]
    string_number = tenant.put("/v1/purposes/x", builders.make_purpose(validity_days="30"))
    assert string_number.status_code == 422
    assert tenant.get("/v1/purposes/x").status_code == 404


def test_cross_border_is_always_sensitive(tenant):
    body = tenant.purpose("abroad", kind="cross_border")
    assert body["sensitive"] is True


def test_archived_purpose_stays_listed(tenant):
    tenant.purpose("contacts", kind="device_permission")
    archived = tenant.delete("/v1/purposes/contacts")
    assert archived.status_code == 200 and archived.json["archived"] is True
    listed = {p["key"]: p["archived"] for p in tenant.get("/v1/purposes").json["items"]}
    assert listed == {"contacts": True, "push": False}


def test_policies_keep_every_version_and_refuse_duplicates(tenant):
    tenant.policy("2026-06", effective_at="2026-06-01T00:00:00Z", material=True)
    assert tenant.post("/v1/policies", builders.make_policy("2026-06")).status_code == 409
    versions = [p["version"] for p in tenant.get("/v1/policies").json["items"]]
    assert versions == ["2026-01", "2026-06"]
    assert tenant.get("/v1/policies/2026-01").json["material"] is False
    assert tenant.get("/v1/policies/1999").status_code == 404
    bad = tenant.post("/v1/policies", builders.make_policy("bad version!"))
    assert bad.status_code == 422 and "version" in bad.json["errors"]


def test_vendors(tenant):
    created = tenant.put("/v1/vendors/getui", builders.make_vendor())
    assert created.status_code == 201 and created.json["company"] == "每日互动股份有限公司"
    assert tenant.put("/v1/vendors/getui", builders.make_vendor(scenario="推送")).status_code == 200
    assert [v["key"] for v in tenant.get("/v1/vendors").json["items"]] == ["getui"]
    assert tenant.get("/v1/vendors/getui").json["scenario"] == "推送"
    missing = tenant.put("/v1/vendors/x", {"name": "x"})
    assert missing.status_code == 422 and "company" in missing.json["errors"]
