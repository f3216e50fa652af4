"""A JSON Schema checker for the subset pydantic writes into the OpenAPI document.

Stricter than JSON Schema on one point: an object schema with `properties` and no
`additionalProperties` accepts no other keys, so a response key the document does not name is
reported (drift between the routes and the document either way).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
    "array": list,
    "object": dict,
}


class SchemaChecker:
    """`errors(value, schema)` lists every place `value` breaks `schema` (empty: it conforms);
    `$ref`s resolve against `document`."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)
        return node

    def errors(self, value: Any, schema: dict[str, Any], at: str = "$") -> list[str]:
        if "$ref" in schema:
            return self.errors(value, self.resolve(schema["$ref"]), at)
        found: list[str] = []
        for key in ("anyOf", "oneOf"):
            if key in schema:
                matches = sum(not self.errors(value, option, at) for option in schema[key])
                if matches == 0 or (key == "oneOf" and matches > 1):
                    found.append(f"{at}: {value!r} matches {matches} of {key}")
        for option in schema.get("allOf", ()):
            found += self.errors(value, option, at)
        if "type" in schema:
            kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(self._is(value, kind) for kind in kinds):
                return [*found, f"{at}: {value!r} is not of type {kinds}"]
        if "enum" in schema and value not in schema["enum"]:
            found.append(f"{at}: {value!r} not in {schema['enum']}")
        if "const" in schema and value != schema["const"]:
            found.append(f"{at}: {value!r} != {schema['const']!r}")
        if isinstance(value, str):
            found += self._string(value, schema, at)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                found.append(f"{at}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                found.append(f"{at}: {value} > maximum {schema['maximum']}")
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                found += self.errors(item, schema["items"], f"{at}[{index}]")
        if isinstance(value, dict):
            found += self._object(value, schema, at)
        return found

    @staticmethod
    def _is(value: Any, kind: str) -> bool:
        if kind in ("integer", "number") and isinstance(value, bool):
            return False
        return isinstance(value, _TYPES[kind])

    @staticmethod
    def _string(value: str, schema: dict[str, Any], at: str) -> list[str]:
        found = []
        if len(value) < schema.get("minLength", 0):
            found.append(f"{at}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{at}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{at}: {value!r} does not match {schema['pattern']}")
        parsers = {"date-time": datetime.fromisoformat, "date": date.fromisoformat}
        parse = parsers.get(schema.get("format", ""))
        if parse is not None:
            try:
                parse(value)
            except ValueError:
                found.append(f"{at}: {value!r} is not a {schema['format']}")
        return found

    def _object(self, value: dict[str, Any], schema: dict[str, Any], at: str) -> list[str]:
        found = []
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                found.append(f"{at}: required key {name!r} missing")
        extra_schema = schema.get("additionalProperties", not properties)
        for name, item in value.items():
            if "propertyNames" in schema:
                found += self.errors(name, schema["propertyNames"], f"{at}.<key {name}>")
            if name in properties:
                found += self.errors(item, properties[name], f"{at}.{name}")
            elif extra_schema is False:
                found.append(f"{at}: key {name!r} is not in the document")
            elif isinstance(extra_schema, dict):
                found += self.errors(item, extra_schema, f"{at}.{name}")
        return found
