"""The OpenAPI document drives the running app: every operation is called with generated
valid and invalid inputs, under every role, and every answer must be one the document lists
for that operation, with a body that matches its schema (schemathesis' idea, on the subset of
JSON Schema pydantic writes, see schema_check)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from aiohttp import ClientResponse

from controller.api.auth import FailedAuthThrottle
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore
from tests.api.conftest import Client, MakeToken, bearer
from tests.api.fleet import seed_fleet
from tests.api.schema_check import SchemaChecker

NEEDS_STATE = {
    "POST /api/v1/scans",
    "POST /api/v1/probes",
    "POST /api/v1/reactivations",
    "POST /api/v1/discoveries",
    "GET /api/v1/jobs/{id}",
    "GET /api/v1/agent/jobs",
    "POST /api/v1/agent/jobs/{id}/lease",
    "POST /api/v1/agent/jobs/{id}/result",
    "POST /api/v1/agent/jobs/{id}/ledger",
}
"""Operations whose success needs a device, job or lease the generated values cannot name: in
the generated pass every answer they give must still match the document; their successes are
driven, and checked against the document, by test_job_and_lease_operations_succeed_as_documented."""

NOT_JSON = object()
"""A body that is not JSON at all."""


@pytest.fixture
def throttle() -> FailedAuthThrottle:
    """Many wrong tokens on purpose here: the throttle must not hide the other answers."""
    return FailedAuthThrottle(limit=1_000_000, window=1.0)


@dataclass
class Case:
    label: str
    path: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    auth: str = "right"
    """"none", "wrong", or a role name; "right" = the operation's own role."""


class Examples:
    """Values for a schema: one valid example, every enum member, and invalid ones."""

    def __init__(self, checker: SchemaChecker) -> None:
        self.checker = checker

    def schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return self.schema(self.checker.resolve(schema["$ref"]))
        for key in ("anyOf", "oneOf"):
            options = [o for o in schema.get(key, ()) if o.get("type") != "null"]
            if options:
                return self.schema(options[0])
        return schema

    def valid(self, schema: dict[str, Any]) -> list[Any]:
        s = self.schema(schema)
        if "enum" in s:
            return list(s["enum"])
        kind = s.get("type")
        if kind == "integer":
            low = s.get("minimum", 0)
            return [low, s["maximum"]] if "maximum" in s else [low]
        if kind == "boolean":
            return [True, False]
        if kind == "string":
            if s.get("format") == "date":
                return [date.today().isoformat()]
            return [
                "hq"[: s.get("maxLength", 2)]
                if s.get("minLength", 0) <= 2
                else "x" * s["minLength"]
            ]
        if kind == "object":
            return [self.object(s)]
        if kind == "array":
            return [[v] for v in self.valid(s.get("items", {}))[:1]]
        return ["x"]

    def object(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {name: self.valid(prop)[0] for name, prop in schema.get("properties", {}).items()}

    def invalid(self, schema: dict[str, Any]) -> list[Any]:
        s = self.schema(schema)
        kind = s.get("type")
        bad: list[Any] = []
        if "enum" in s:
            bad.append("no-such-value")
        if kind == "integer":
            bad.append("ten")
            if "minimum" in s:
                bad.append(s["minimum"] - 1)
            if "maximum" in s:
                bad.append(s["maximum"] + 1)
        if kind == "string" and s.get("minLength", 0) >= 1:
            bad.append("")
        if kind == "string" and "maxLength" in s:
            bad.append("x" * (s["maxLength"] + 1))
        if s.get("format") == "date":
            bad.append("not-a-date")
        return bad


def _cases(
    op: dict[str, Any], examples: Examples, path_values: dict[str, list[str]]
) -> Iterator[Case]:
    path_params = [p["name"] for p in op["parameters"] if p["in"] == "path"]
    query_params = [p for p in op["parameters"] if p["in"] == "query"]
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    paths = [dict.fromkeys(path_params, value) for value in path_values["id"]]
    if not path_params:
        paths = [{}]
    body: Any = examples.valid(body_schema)[0] if body_schema else None
    for path in paths:
        yield Case("valid", path, body=body)
    base = paths[0]
    for auth in ("none", "wrong", *(r.value for r in Role)):
        yield Case(f"auth {auth}", base, body=body, auth=auth)
    for param in query_params:
        for value in examples.valid(param["schema"]):
            yield Case(f"{param['name']}={value}", base, {param["name"]: str(value)}, body)
        for value in examples.invalid(param["schema"]):
            yield Case(f"bad {param['name']}={value!r}", base, {param["name"]: str(value)}, body)
    yield Case("unknown query parameter", base, {"no_such_parameter": "1"}, body)
    if body_schema:
        resolved = examples.schema(body_schema)
        for name, prop in resolved.get("properties", {}).items():
            for value in examples.valid(prop):
                yield Case(f"body {name}={value!r}", base, body={**body, name: value})
            for value in examples.invalid(prop):
                yield Case(f"bad body {name}={value!r}", base, body={**body, name: value})
        for name in resolved.get("required", ()):
            yield Case(
                f"body without {name}", base, body={k: v for k, v in body.items() if k != name}
            )
        yield Case("body with an unknown key", base, body={**body, "no_such_key": 1})
        yield Case("body not JSON", base, body=NOT_JSON)
        yield Case("body a list", base, body=[body])


async def test_every_operation_answers_as_its_document_says(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    tokens = {
        role.value: await make_token(role, site="hq" if role is Role.AGENT else None)
        for role in Role
    }
    spare, _ = await TokenStore(store.engine).create(Role.VIEWER, name="to revoke")
    path_values = {"id": ["A1000", "00:04:F2:AA:00:03", "NO-SUCH-1", "??", spare.id]}

    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    checker = SchemaChecker(document)
    examples = Examples(checker)
    failures: list[str] = []
    succeeded: set[str] = set()
    calls = 0
    for template, operations in document["paths"].items():
        for method, op in operations.items():
            for case in _cases(op, examples, path_values):
                calls += 1
                failure, _ = await _call(client, checker, template, method, op, case, tokens)
                if failure is None:
                    continue
                if failure == "2xx":
                    succeeded.add(f"{method.upper()} {template}")
                else:
                    failures.append(f"{method.upper()} {template} [{case.label}]: {failure}")
    assert failures == []
    every = {f"{m.upper()} {t}" for t, ops in document["paths"].items() for m in ops}
    assert every - succeeded - NEEDS_STATE == set(), "operations never answered 2xx"
    assert calls >= 10 * len(every)


async def test_job_and_lease_operations_succeed_as_documented(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    """The NEEDS_STATE operations, each called once with inputs that name real things (a seeded
    device, the job just queued, the lease just granted), must succeed with a documented body."""
    await seed_fleet(store)
    tokens = {
        role.value: await make_token(role, site="hq" if role is Role.AGENT else None)
        for role in Role
    }
    response = await client.get("/api/v1/openapi.json")
    document = await response.json()
    checker = SchemaChecker(document)
    paths = document["paths"]
    answers: dict[str, Any] = {}

    async def succeed(method: str, template: str, case: Case) -> Any:
        verdict, payload = await _call(
            client, checker, template, method, paths[template][method], case, tokens
        )
        assert verdict == "2xx", f"{method.upper()} {template} [{case.label}]: {verdict}"
        answers[f"{method.upper()} {template}"] = payload
        return payload

    scan = await succeed("post", "/api/v1/scans", Case("a site", {}, body={"site": "hq"}))
    await succeed("post", "/api/v1/probes", Case("a device", {}, body={"device": "A1000"}))
    reactivation = {"device": "00-04-f2-aa-00-01", "feature": "base"}
    await succeed("post", "/api/v1/reactivations", Case("a MAC", {}, body=reactivation))
    discovery = {"cidrs": ["127.0.0.0/30"], "site": "hq"}
    await succeed("post", "/api/v1/discoveries", Case("a range", {}, body=discovery))
    job = await succeed("get", "/api/v1/jobs/{id}", Case("the scan", {"id": scan["job"]}))
    assert (job["id"], job["kind"], job["state"]) == (scan["job"], "scan", "queued")

    lease = await succeed("get", "/api/v1/agent/jobs", Case("hq queue", {}, {"wait": "0"}))
    claimed = {"id": lease["id"]}
    renewal = {"lease_id": lease["lease_id"], "progress": {"done": 0, "total": 1}}
    await succeed("post", "/api/v1/agent/jobs/{id}/lease", Case("renew", claimed, body=renewal))
    failed = {"lease_id": lease["lease_id"], "state": "failed", "error": "device unplugged"}
    stored = await succeed(
        "post", "/api/v1/agent/jobs/{id}/result", Case("a failure", claimed, body=failed)
    )
    assert stored == {"stored": True}
    ended = await succeed("get", "/api/v1/jobs/{id}", Case("ended", claimed))
    assert ended["state"] == "failed"

    # The re-activation's ledger: claim hq's jobs in turn (oldest first) up to the re-activation.
    for _ in range(4):
        lease = await succeed("get", "/api/v1/agent/jobs", Case("next", {}, {"wait": "0"}))
        if lease["kind"] == "reactivation":
            break
        ended = {"lease_id": lease["lease_id"], "state": "failed", "error": "not this one"}
        await succeed(
            "post", "/api/v1/agent/jobs/{id}/result", Case("skip", {"id": lease["id"]}, body=ended)
        )
    assert lease["kind"] == "reactivation", lease
    survey = {"lease_id": lease["lease_id"], "call": {"call": "survey", "serial": "A1001",
                                                      "feature": "base"}}  # fmt: skip
    answer = await succeed(
        "post", "/api/v1/agent/jobs/{id}/ledger", Case("survey", {"id": lease["id"]}, body=survey)
    )
    assert answer.get("refused") is None, answer
    assert set(answers) == NEEDS_STATE


async def _call(
    client: Client,
    checker: SchemaChecker,
    template: str,
    method: str,
    op: dict[str, Any],
    case: Case,
    tokens: dict[str, str],
) -> tuple[str | None, Any]:
    """None: fine; "2xx": fine and successful; else what was wrong. With the JSON body, if any."""
    path = template
    for name, value in case.path.items():
        path = path.replace("{" + name + "}", _quote(value))
    headers: dict[str, str] = {}
    role = op.get("x-polyfleet-role")
    auth = role if case.auth == "right" else case.auth
    if auth == "wrong":
        headers = bearer("pfk_0123456789ab_" + "A" * 43)
    elif auth not in ("none", None):
        headers = bearer(tokens[auth])
    kwargs: dict[str, Any] = {"headers": headers, "params": case.query}
    if case.body is NOT_JSON:
        kwargs["data"] = "{not json"
        headers["Content-Type"] = "application/json"
    elif case.body is not None:
        kwargs["data"] = json.dumps(case.body)
        headers["Content-Type"] = "application/json"
    response = await client.request(method.upper(), path, **kwargs)
    if response.content_type == "text/event-stream":  # a stream never ends: its first event
        return await _stream_answer(response, op), None
    text = await response.text()
    documented = op["responses"].get(str(response.status))
    if documented is None:
        return (
            f"status {response.status} is not documented ({sorted(op['responses'])}): {text[:200]}"
        ), None
    content = documented.get("content")
    if not content:
        return (None if not text else f"status {response.status} has an undocumented body"), None
    if response.content_type not in content:
        return f"content type {response.content_type} is not one of {sorted(content)}", None
    schema = content[response.content_type]["schema"]
    payload = json.loads(text) if "json" in response.content_type else None
    if payload is not None:
        found = checker.errors(payload, schema)
        if found:
            return f"status {response.status}: " + "; ".join(found[:5]), payload
    return ("2xx" if 200 <= response.status < 300 else None), payload


async def _stream_answer(response: ClientResponse, op: dict[str, Any]) -> str | None:
    """A server-sent event stream, checked by its status, content type and first line."""
    documented = op["responses"].get(str(response.status))
    first = await response.content.readline()
    response.close()
    if documented is None or "text/event-stream" not in documented.get("content", {}):
        return f"status {response.status} with an undocumented event stream"
    if not first.strip():
        return "the event stream sent nothing"
    return "2xx" if 200 <= response.status < 300 else None


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
