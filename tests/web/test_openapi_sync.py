"""openapi.yaml is the contract clients generate from: it lists exactly the routes Flask serves,
it is a valid OpenAPI 3.1 document, the copy inside the package is the same file, and the
validator the HTTP tests use really rejects a wrong answer."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_spec_validator import validate as validate_spec

from tests.support.openapi_contract import (
    PACKAGED_SPEC_PATH,
    SPEC_PATH,
    check_response,
    documented_operations,
    flask_operations,
    openapi,
    sent_request,
    spec,
)


def test_every_route_is_documented_and_every_documented_route_exists(app):
    routes, documented = flask_operations(app), documented_operations()
    assert sorted(routes - documented) == [], "Flask routes missing from openapi.yaml"
    assert sorted(documented - routes) == [], "openapi.yaml operations Flask does not serve"


def test_the_sync_check_notices_a_removed_route(app):
    document = copy.deepcopy(spec())
    del document["paths"]["/v1/checks"]
    assert flask_operations(app) - documented_operations(document) == {("/v1/checks", "POST")}


def test_the_document_is_valid_openapi_3_1():
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate_spec(document)


def test_the_document_has_no_duplicate_keys():
    """PyYAML keeps the last of two equal keys silently; a duplicated schema name would hide one."""

    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line + 1}"
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=Strict)


def test_the_packaged_copy_is_the_root_document():
    """The wheel serves consent_api/web/openapi.yaml; clients read the root one. Fix with:
    cp openapi.yaml consent_api/web/openapi.yaml"""
    assert PACKAGED_SPEC_PATH.read_bytes() == SPEC_PATH.read_bytes()


def test_every_operation_has_an_id_summary_security_and_problem_errors():
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            where = f"{method.upper()} {path}"
            assert op.get("operationId") and op.get("summary"), where
            assert "security" in op, f"{where}: say who may call it (security: [] for anyone)"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response.get("$ref", "")
                    assert ref.startswith("#/components/responses/"), f"{where} {status}: use a problem response"
            if op["security"]:
                assert {"401", "403", "429"} <= set(op["responses"]), where
            if "requestBody" in op:
                assert {"400", "413", "422"} <= set(op["responses"]), where


def test_the_document_is_served_and_rendered(api):
    served = api.get("/v1/openapi.yaml", expect=200)
    assert served.mimetype == "application/yaml"
    assert served.get_data() == SPEC_PATH.read_bytes()
    page = api.get("/docs", expect=200)
    html = page.get_data(as_text=True)
    assert page.mimetype == "text/html"
    for op_id in ("recordConsents", "getPurposeState", "bulkCheck", "createTenant"):
        assert f'id="{op_id}"' in html
    assert "个性化推送" in html  # examples keep their Chinese texts
    assert "<script" not in html and "src=" not in html  # no external assets: works offline


def test_the_validator_rejects_a_changed_response_field(api, operator):
    """Renaming one field of a real answer must fail validation (else the HTTP tests prove nothing)."""
    response = api.post("/v1/tenants", json={"name": "t"}, token=operator, expect=201)
    body = response.get_json()
    body["tenant_id"] = body.pop("id")
    response.set_data(json.dumps(body))
    with pytest.raises(Exception) as failure:
        openapi().validate_response(sent_request(response),
                                                    WerkzeugOpenAPIResponse(response))
    assert "id" in str(failure.value) or failure.value.__cause__ is not None
    with pytest.raises(Exception):
        check_response(response)


def test_the_validator_rejects_an_undocumented_status(api, operator):
    response = api.post("/v1/tenants", json={"name": "t"}, token=operator, expect=201)
    response.status_code = 202
    with pytest.raises(Exception):
        check_response(response)
