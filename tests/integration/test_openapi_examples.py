"""The examples of openapi.yaml: every operation shows its request and its answers, and
every example there is (media types, parameters, headers, schemas) holds to its schema.

Coverage: an operation with a request body has an example for each of its media types;
every documented response with a body has an example for each of its media types, the
shared problem-details responses included. So a new operation cannot skip them."""
import json

import jsonschema
import pytest

from segtest import SPEC, _RESOLVER, schema_validator

METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
# keywords whose value is one schema, or a list or a map of schemas (JSON Schema 2020-12)
SUB_SCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames", "if",
              "then", "else", "unevaluatedProperties", "unevaluatedItems", "contentSchema")
SUB_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUB_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = _RESOLVER.resolve(node["$ref"])[1]
    return node


def operations():
    for template, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), template, item[method]


def example_values(holder):
    """(name, value) of a media type's, parameter's or header's example(s)."""
    if "example" in holder:
        yield "example", holder["example"]
    for name, ex in (holder.get("examples") or {}).items():
        ex = resolve(ex)
        assert "value" in ex, f"example {name} has no value (externalValue is not checked)"
        yield name, ex["value"]


def has_examples(media):
    return "example" in media or bool(media.get("examples"))


# ---------------------------------------------------------------- coverage

def is_binary(media):
    """A body of bytes (an image): there is no text to show as its example."""
    schema = resolve((media or {}).get("schema")) or {}
    return schema.get("format") == "binary" or \
        str(schema.get("contentMediaType", "")).startswith(("image/", "application/octet-stream"))


def missing_examples():
    """What lacks an example: `METHOD path: request body ctype` or `… response status ctype`,
    a response shared through components/responses named once, with its first user."""
    missing, shared = [], set()
    for method, template, op in operations():
        body = resolve(op.get("requestBody"))
        if body:
            for ctype, media in (body.get("content") or {}).items():
                if not has_examples(media):
                    missing.append(f"{method} {template}: request body {ctype}")
        for status, response in (op.get("responses") or {}).items():
            ref = (response or {}).get("$ref")
            for ctype, media in (resolve(response).get("content") or {}).items():
                if has_examples(media) or (ref, ctype) in shared or is_binary(media):
                    continue
                if ref:
                    shared.add((ref, ctype))
                    missing.append(f"{ref} {ctype} (first used by {method} {template} {status})")
                else:
                    missing.append(f"{method} {template}: response {status} {ctype}")
    return missing


def test_every_operation_shows_its_request_and_its_answers():
    missing = missing_examples()
    assert not missing, (
        "openapi.yaml: these request bodies and responses have no `example` or `examples` "
        "beside their `schema` (add what segmentd really answers, as JSON or, for a text "
        "media type such as text/html, the text itself; a response shared through "
        "components/responses gets it there, once for every operation that uses it; "
        "components/examples holds values several places share):\n  " + "\n  ".join(missing))


def test_the_coverage_check_sees_a_missing_example():
    # the check itself: an operation without examples is reported, request and response
    op = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
          "responses": {"200": {"description": "ok", "content": {
              "application/json": {"schema": {"type": "object"}}}},
              "204": {"description": "no body"}}}
    SPEC["paths"]["/__probe"] = {"post": op}
    try:
        assert [m for m in missing_examples() if "/__probe" in m] == ["POST /__probe: request body application/json",
                                      "POST /__probe: response 200 application/json"]
    finally:
        del SPEC["paths"]["/__probe"]


# ---------------------------------------------------------------- validity

def walk_schema(schema, where, out):
    """Collects the schema-level `example` and `examples` of a schema and its parts."""
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        out.append((where + "/example", schema, schema["example"]))
    if isinstance(schema.get("examples"), list):
        for i, value in enumerate(schema["examples"]):
            out.append((f"{where}/examples/{i}", schema, value))
    for key in SUB_SCHEMA:
        if isinstance(schema.get(key), dict):
            walk_schema(schema[key], f"{where}/{key}", out)
    for key in SUB_SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            walk_schema(sub, f"{where}/{key}/{i}", out)
    for key in SUB_SCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            walk_schema(sub, f"{where}/{key}/{name}", out)


def walk(node, where, out):
    """Collects (where, schema, value, media type) of every example in the document:
    media types', parameters' and headers' (beside a `schema`), and the schemas' own."""
    if isinstance(node, list):
        for i, sub in enumerate(node):
            walk(sub, f"{where}/{i}", out)
        return
    if not isinstance(node, dict):
        return
    if "schema" in node:
        found = []
        walk_schema(node["schema"], where + "/schema", found)
        out.extend((w, s, v, None) for w, s, v in found)
        if "example" in node or "examples" in node:
            ctype = where.rsplit("/", 1)[-1].replace("~1", "/") if "/content/" in where else None
            for name, value in example_values(node):
                out.append((f"{where}/{name}", node["schema"], value, ctype))
    for key, sub in node.items():
        if key == "schema":
            continue
        if key == "schemas" and where == "#/components":
            for name, schema in sub.items():
                found = []
                walk_schema(schema, f"{where}/schemas/{name}", found)
                out.extend((w, s, v, None) for w, s, v in found)
            continue
        if key == "examples" and where == "#/components":
            continue  # checked where they are used, against that schema
        walk(sub, f"{where}/{key.replace('/', '~1')}", out)


EXAMPLES = []
walk(SPEC, "#", EXAMPLES)


def check_example(schema, value, ctype):
    schema_validator(schema).validate(value)
    if ctype == "application/x-ndjson":  # the body as text: a JSON value a line
        assert isinstance(value, str), "an NDJSON example is the body as text"
        for n, line in enumerate(value.splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except ValueError as e:
                    raise AssertionError(f"line {n} is not JSON: {e}") from None


def test_examples_are_found():
    # the walk reaches every kind of place an example sits in
    places = "\n".join(w for w, *_ in EXAMPLES)
    assert len(EXAMPLES) > 100, len(EXAMPLES)
    for kind in ("/requestBody/content/", "/responses/", "/parameters/", "/headers/"):
        assert kind in places, kind


def test_a_wrong_example_is_refused():
    # the check itself: a value its schema refuses, and NDJSON that is not JSON
    with pytest.raises(jsonschema.ValidationError):
        check_example({"$ref": "#/components/schemas/Health"}, {"status": 7}, "application/json")
    with pytest.raises(AssertionError, match="line 2 is not JSON"):
        check_example({"type": "string"}, '{"id":"a"}\n{id}\n', "application/x-ndjson")


@pytest.mark.parametrize("where,schema,value,ctype", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_matches_its_schema(where, schema, value, ctype):
    try:
        check_example(schema, value, ctype)
    except jsonschema.ValidationError as e:
        path = "/" + "/".join(str(p) for p in e.absolute_path)
        raise AssertionError(f"{where}: at {path}: {e.message}") from None
