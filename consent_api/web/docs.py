"""Blueprint: the OpenAPI document (/v1/openapi.yaml) and a reference page rendered from it (/docs).

The page is built on the server from the packaged YAML, with inline CSS only, so it works
offline and under a strict Content-Security-Policy (no scripts, no external assets).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response
from markupsafe import Markup, escape

bp = Blueprint("docs", __name__)

METHODS = ("get", "put", "post", "delete", "patch")
DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@cache
def document_bytes() -> bytes:
    """The packaged openapi.yaml (kept byte-identical to the repository's root copy by a test)."""
    return resources.files("consent_api.web").joinpath("openapi.yaml").read_bytes()


@cache
def document() -> dict[str, Any]:
    return yaml.safe_load(document_bytes())


@bp.get("/v1/openapi.yaml")
def openapi_yaml():
    """This document."""
    response = Response(document_bytes(), mimetype="application/yaml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/docs")
def reference():
    """A readable reference of this document (HTML, no external assets)."""
    response = Response(render(document()), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# --- rendering --------------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#1d232a}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ea;padding-top:1rem}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;background:#f3f5f8;
border-radius:3px;padding:0 .25em}pre{padding:.6rem;overflow:auto}
.op{border:1px solid #dde3ea;border-radius:6px;margin:1rem 0;padding:.4rem 1rem}
.m{display:inline-block;min-width:4.2em;font-weight:700;text-transform:uppercase}
.get{color:#1a6fb5}.post{color:#1f8a4c}.put{color:#a86500}.delete{color:#b3261e}
table{border-collapse:collapse;width:100%;margin:.3rem 0}td,th{border-top:1px solid #e6eaef;
padding:.2rem .5rem;text-align:left;vertical-align:top}th{font-weight:600;background:#fafbfc}
.d{white-space:pre-wrap}.muted{color:#5b6570}nav a{margin-right:1rem}
"""


def _text(value: str | None) -> Markup:
    """Escape, then the two Markdown habits the document uses: `code` and **bold**."""
    html = str(escape(value or ""))
    html = _CODE.sub(r"<code>\1</code>", html)
    return Markup(_BOLD.sub(r"<strong>\1</strong>", html))


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _resolve(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        target: Any = doc
        for part in parts:
            target = target[part]
        node = target
    return node


def _type(schema: dict) -> Markup:
    """A short type label: a link for a named schema, constraints in words."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return Markup('<a href="#schema-{0}">{0}</a>').format(name)
    for combinator in ("oneOf", "anyOf", "allOf"):
        if combinator in schema:
            joiner = " & " if combinator == "allOf" else " | "
            return Markup(joiner).join(_type(s) for s in schema[combinator])
    if "const" in schema:
        return Markup("<code>{}</code>").format(repr(schema["const"]).replace("True", "true"))
    kind = schema.get("type", "any")
    label = " | ".join(kind) if isinstance(kind, list) else str(kind)
    if "array" in label and "items" in schema:
        return Markup("array of ") + _type(schema["items"])
    if "object" in label and isinstance(schema.get("additionalProperties"), dict):
        return Markup("map of ") + _type(schema["additionalProperties"])
    extras = []
    if "enum" in schema:
        extras.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "pattern" in schema:
        extras.append(f"pattern {schema['pattern']}")
    if "format" in schema:
        extras.append(schema["format"])
    for key, word in (("minLength", "min length"), ("maxLength", "max length"), ("minItems", "min items"),
                      ("maxItems", "max items"), ("minimum", "≥"), ("exclusiveMinimum", ">"),
                      ("maximum", "≤")):
        if key in schema:
            extras.append(f"{word} {schema[key]}")
    if "default" in schema:
        extras.append(f"default {schema['default']!r}")
    out = Markup("{}").format(label)
    if extras:
        out += Markup(' <span class="muted">({})</span>').format("; ".join(extras))
    return out


def _fields(doc: dict, schema: dict) -> Markup:
    schema = _resolve(doc, schema)
    props = schema.get("properties")
    if not props:
        return Markup("<p>{}</p>").format(_type(schema))
    required = set(schema.get("required", []))
    rows = [Markup("<tr><th>field</th><th>type</th><th></th><th>about</th></tr>")]
    for name, prop in props.items():
        rows.append(Markup("<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            name, _type(prop), "required" if name in required else "", _text(prop.get("description"))))
    return Markup("<table>") + Markup("").join(rows) + Markup("</table>")


def _operation(doc: dict, path: str, method: str, op: dict, shared_params: list) -> Markup:
    parts = [Markup('<div class="op" id="{}"><h3><span class="m {}">{}</span> <code>{}</code></h3>').format(
        op.get("operationId", ""), method, method, path)]
    parts.append(Markup("<p><strong>{}</strong></p>").format(_text(op.get("summary"))))
    if op.get("description"):
        parts.append(Markup('<p class="d">{}</p>').format(_text(op["description"])))
    security = op.get("security", doc.get("security", []))
    who = ", ".join(
        f"{name} ({', '.join(roles)})" if roles else name
        for requirement in security for name, roles in requirement.items()
    ) or "anyone"
    parts.append(Markup("<p>Auth: {}</p>").format(who))
    params = [_resolve(doc, p) for p in shared_params + op.get("parameters", [])]
    if params:
        rows = [Markup("<tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>")]
        for p in params:
            rows.append(Markup("<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
                p["name"], "" if not p.get("required") else Markup(" *"), p["in"],
                _type(p.get("schema", {})), _text(p.get("description"))))
        parts.append(Markup("<table>") + Markup("").join(rows) + Markup("</table>"))
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            parts.append(Markup("<p>Body <code>{}</code>: {}</p>").format(media, _type(content["schema"])))
            for name, example in (content.get("examples") or {}).items():
                parts.append(Markup("<p class=muted>example {}</p><pre>{}</pre>").format(
                    name, yaml.safe_dump(example.get("value"), allow_unicode=True, sort_keys=False)))
    rows = [Markup("<tr><th>status</th><th>answer</th><th>about</th></tr>")]
    for status, response in op.get("responses", {}).items():
        response = _resolve(doc, response)
        content = response.get("content") or {}
        shape = Markup(", ").join(
            Markup("<code>{}</code> {}").format(media, _type(c.get("schema", {}))) for media, c in content.items())
        rows.append(Markup("<tr><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            status, shape, _text(response.get("description"))))
    parts.append(Markup("<table>") + Markup("").join(rows) + Markup("</table></div>"))
    return Markup("").join(parts)


def render(doc: dict) -> str:
    info = doc["info"]
    out = [Markup("<!doctype html><html lang=en><head><meta charset=utf-8>"
                  '<meta name=viewport content="width=device-width,initial-scale=1">'
                  "<title>{} {} reference</title><style>{}</style></head><body>").format(
        info["title"], info["version"], Markup(STYLE))]
    out.append(Markup("<h1>{} <small class=muted>{}</small></h1><p>{}</p>").format(
        info["title"], info["version"], _text(info.get("summary"))))
    out.append(Markup('<p>Machine-readable: <a href="/v1/openapi.yaml">/v1/openapi.yaml</a></p>'))
    out.append(Markup('<div class="d">{}</div>').format(_text(info.get("description"))))
    tags = [t["name"] for t in doc.get("tags", [])]
    out.append(Markup("<nav>") + Markup("").join(
        Markup('<a href="#tag-{0}">{0}</a>').format(t) for t in tags) + Markup('<a href="#schemas">schemas</a></nav>'))
    for tag in tags:
        out.append(Markup('<h2 id="tag-{}">{}</h2>').format(tag, tag))
        for path, item in doc["paths"].items():
            for method in METHODS:
                op = item.get(method)
                if op and tag in op.get("tags", []):
                    out.append(_operation(doc, path, method, op, item.get("parameters", [])))
    out.append(Markup('<h2 id="schemas">Schemas</h2>'))
    for name, schema in doc["components"]["schemas"].items():
        out.append(Markup('<h3 id="schema-{0}">{0}</h3>').format(name))
        if schema.get("description"):
            out.append(Markup('<p class="d">{}</p>').format(_text(schema["description"])))
        out.append(_fields(doc, schema))
    out.append(Markup("</body></html>"))
    return str(Markup("\n").join(out))
