"""The meta routes: the OpenAPI document at /api/schema/ and Swagger UI at /api/docs/.

Swagger UI's files come from the `swagger-ui-bundle` package and are served
by the app itself, so the page works on a machine without internet; the page
gets a CSP that allows nothing else, and may not be framed. These routes need
no token and are not part of the document they serve.
"""

import json

import yaml
from flask import Blueprint, Response, abort, current_app, render_template, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from .errors import error_response
from .openapi import document
from .security import page_headers

ASSETS = frozenset({
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-16x16.png",
    "favicon-32x32.png",
})

FORMATS = {
    "json": ("application/json", lambda doc: json.dumps(doc, indent=2)),
    "yaml": ("application/yaml", lambda doc: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)),
}

bp = Blueprint("docs", __name__, url_prefix="/api", static_folder="static/docs",
               static_url_path="/docs/static")

# Swagger UI loads everything from this host: its files, the document, and
# the calls "Try it out" makes. Its CSS draws icons from data: URIs.
PAGE_HEADERS = page_headers(
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'")


def render(doc: dict, fmt: str) -> str:
    """Return the document as JSON or YAML text."""
    return FORMATS[fmt][1](doc)


@bp.get("/schema/")
def schema():
    """Return the OpenAPI document: JSON, or YAML with `?format=yaml`."""
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        return error_response(400, {"format": ["Must be one of: json, yaml."]})
    return Response(render(document(current_app), fmt), mimetype=FORMATS[fmt][0])


@bp.get("/docs/")
def swagger_ui():
    """Show Swagger UI for the document."""
    return render_template("swagger_ui.html"), PAGE_HEADERS


@bp.get("/docs/<name>")
def swagger_ui_asset(name):
    """Serve one of Swagger UI's files from the installed package."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)

