"""The OpenAPI 3.1 document, built from the endpoint registry and the pydantic models.

Nothing here is written by hand per route: paths, roles, parameters, bodies and every status a
route can answer come from the `Endpoint` declarations that also drive the routes themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from controller.api.problems import PROBLEM_JSON, ProblemDetail
from controller.api.routing import ApiRoutes, Endpoint

REF = "#/components/schemas/{model}"
Refs = dict[Any, dict[str, Any]]
"""(model, "validation" | "serialization") -> its schema (a $ref into components)."""
_AUTH_ERRORS = {
    401: "no token, or an unknown or revoked one",
    403: "the token's role (or site) may not use this route",
    429: "too many failed authentications from this address (see Retry-After)",
}


def _schemas(
    tables: Iterable[ApiRoutes],
) -> tuple[Refs, dict[str, Any]]:
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ProblemDetail, "serialization")}
    for table in tables:
        for endpoint in table.endpoints:
            for model in (endpoint.query, endpoint.body):
                if model is not None:
                    wanted.add((model, "validation"))
            if endpoint.response is not None:
                wanted.add((endpoint.response, "serialization"))
    ordered = sorted(wanted, key=lambda pair: (pair[0].__module__, pair[0].__qualname__, pair[1]))
    key_map, defs = models_json_schema(ordered, ref_template=REF)
    return dict(key_map), defs.get("$defs", {})


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="ProblemDetail")}}},
    }


def _parameters(
    endpoint: Endpoint,
    components: dict[str, Any],
    refs: Refs,
) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in endpoint.path_params
    ]
    if endpoint.query is None:
        return parameters
    ref = refs[(endpoint.query, "validation")]["$ref"]
    schema = components[ref.rsplit("/", 1)[1]]
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if "description" in prop:
            parameter["description"] = prop["description"]
        if prop.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _responses(endpoint: Endpoint, refs: Refs) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": HTTPStatus(endpoint.status).phrase}
    if endpoint.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(endpoint.response, "serialization")]}}
    elif isinstance(endpoint.content_type, str):
        kind = "object" if endpoint.content_type == "application/json" else "string"
        ok["content"] = {endpoint.content_type: {"schema": {"type": kind}}}
    elif endpoint.content_type is not None:
        ok["content"] = {
            media: {"schema": dict(schema)} for media, schema in endpoint.content_type.items()
        }
    responses[str(endpoint.status)] = ok
    if endpoint.query is not None or endpoint.body is not None or endpoint.path_params:
        responses["400"] = _problem("invalid input; `errors` names each invalid field")
    else:
        responses["400"] = _problem("this route takes no query parameters")
    if endpoint.role is not None:
        for status, text in _AUTH_ERRORS.items():
            responses[str(status)] = _problem(text)
    for status, text in endpoint.responses.items():
        plain = status < 300 or status == 304  # 304: no body
        responses[str(status)] = {"description": text} if plain else _problem(text)
    return responses


def openapi_document(tables: Iterable[ApiRoutes], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint in `tables`."""
    tables = list(tables)
    refs, components = _schemas(tables)
    paths: dict[str, dict[str, Any]] = {}
    for table in tables:
        for endpoint in table.endpoints:
            operation: dict[str, Any] = {
                "operationId": endpoint.operation_id,
                "summary": endpoint.summary,
                "tags": list(endpoint.tags),
                "parameters": _parameters(endpoint, components, refs),
                "responses": _responses(endpoint, refs),
            }
            if endpoint.role is not None:
                operation["security"] = [{"bearer": []}]
                operation["x-polyfleet-role"] = endpoint.role.value
                operation["description"] = f"Needs a token of role `{endpoint.role}`" + (
                    "." if endpoint.role == "agent" else " or above."
                )
            else:
                operation["security"] = []
            if endpoint.description:
                operation["description"] = (
                    f"{operation.get('description', '')}\n\n{endpoint.description}".strip()
                )
            if endpoint.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": refs[(endpoint.body, "validation")]}
                    },
                }
            paths.setdefault(table.full_path(endpoint), {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "polyfleet controller API", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "pfk_<id>_<secret>"}
            },
        },
    }
