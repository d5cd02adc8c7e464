"""/openapi.json describes the error answers the server really sends.

Every documented error status of the scoring routes and of /readyz is provoked for real (bad
bodies, an oversized batch, a failing model call, a server still loading) and the body is
checked against the schema the document gives for that status, resolved from
``components``: with a small JSON-schema checker (the keywords pydantic emits here; any other
keyword fails the test rather than being skipped) and with the pydantic model itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mlref.serve.app import create_app
from mlref.serve.schemas import (
    ErrorResponse,
    NotReadyStatus,
    ReadyStatus,
    ValidationErrorResponse,
)

pytestmark = pytest.mark.anyio

_ANNOTATIONS = {"title", "description", "default", "examples", "format"}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_problems(
    value: Any, schema: dict[str, Any], components: dict[str, Any], at: str = "$"
) -> list[str]:
    """Where ``value`` breaks ``schema`` (a subset of JSON Schema: the keywords pydantic
    emits for these models). An unknown keyword is reported, never ignored."""
    problems: list[str] = []
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            name = rule.removeprefix("#/components/schemas/")
            if name not in components:
                problems.append(f"{at}: unresolvable $ref {rule}")
            else:
                problems += schema_problems(value, components[name], components, at)
        elif key == "type":
            ok = isinstance(value, _TYPES[rule]) and not (
                rule in ("integer", "number") and isinstance(value, bool)
            )
            if not ok:
                problems.append(f"{at}: {value!r} is not of type {rule}")
        elif key == "const":
            if value != rule or type(value) is not type(rule):
                problems.append(f"{at}: {value!r} is not the constant {rule!r}")
        elif key == "enum":
            if value not in rule:
                problems.append(f"{at}: {value!r} not in {rule}")
        elif key == "anyOf":
            if all(schema_problems(value, s, components, at) for s in rule):
                problems.append(f"{at}: {value!r} matches none of {rule}")
        elif key == "required":
            if isinstance(value, dict):
                problems += [f"{at}: missing key {k!r}" for k in rule if k not in value]
        elif key == "properties":
            if isinstance(value, dict):
                for name, sub in rule.items():
                    if name in value:
                        problems += schema_problems(value[name], sub, components, f"{at}.{name}")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                extra = [k for k in value if k not in schema.get("properties", {})]
                if rule is False:
                    problems += [f"{at}: undocumented key {k!r}" for k in extra]
                elif isinstance(rule, dict):
                    for k in extra:
                        problems += schema_problems(value[k], rule, components, f"{at}.{k}")
        elif key == "items":
            if isinstance(value, list):
                for i, item in enumerate(value):
                    problems += schema_problems(item, rule, components, f"{at}[{i}]")
        elif key == "minItems":
            if isinstance(value, list) and len(value) < rule:
                problems.append(f"{at}: fewer than {rule} items")
        elif key == "minimum":
            if isinstance(value, int | float) and value < rule:
                problems.append(f"{at}: {value} < minimum {rule}")
        else:
            problems.append(f"{at}: schema keyword {key!r} not supported by this checker")
    return problems


def documented(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    return dict(responses[str(status)])


def body_schema(response_doc: dict[str, Any]) -> dict[str, Any]:
    return dict(response_doc["content"]["application/json"]["schema"])


MODELS: dict[str, type[Any]] = {
    "ErrorResponse": ErrorResponse,
    "ValidationErrorResponse": ValidationErrorResponse,
    "ReadyStatus": ReadyStatus,
    "NotReadyStatus": NotReadyStatus,
}


def check_against_doc(
    doc: dict[str, Any], path: str, method: str, response: Any, label: str
) -> None:
    """The real ``response`` conforms to what ``doc`` says for its path and status."""
    entry = documented(doc, path, method, response.status_code)
    schema = body_schema(entry)
    body = response.json()
    problems = schema_problems(body, schema, doc["components"]["schemas"])
    assert problems == [], f"{label}: {method.upper()} {path} -> {response.status_code}: {body}"
    model = MODELS[schema["$ref"].rsplit("/", 1)[-1]]
    model.model_validate_json(response.content, strict=True)  # the model says the same
    for header in entry.get("headers", {}):
        assert header.lower() in response.headers, f"{label}: documented {header} missing"
        assert response.headers[header].isdigit()


async def test_documented_error_schemas_match_the_real_error_responses(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    import httpx

    model, gate = kit.gated(champion)
    gate.gate.clear()  # the warm-up prediction blocks: the server is "loading"
    config = kit.serve_config(max_batch_request=3, body_timeout_s=0.3)
    app = create_app(settings, model=model, features=features, config=config)

    async def slow_body() -> Any:  # the rest of the body comes after body_timeout_s
        yield b'{"transaction_id": '
        await asyncio.sleep(1.0)
        yield b'"x"}'

    sent: list[tuple[str, str, Any, str]] = []  # (path, method, response, what)

    async def post(path: str, what: str, **kwargs: Any) -> None:
        sent.append((path, "post", await client.post(path, **kwargs), what))

    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        doc = (await client.get("/openapi.json")).json()
        sent.append(("/readyz", "get", await client.get("/readyz"), "loading"))
        await post("/predict", "loading", json=kit.txn(0))
        await post("/predict/batch", "loading", json={"transactions": [kit.txn(0)]})
        gate.gate.set()
        await kit.wait_ready(client, 20)
        sent.append(("/readyz", "get", await client.get("/readyz"), "ready"))
        for path, wrap in (("/predict", lambda b: b), ("/predict/batch", _as_batch)):
            await post(path, "not JSON", content="{oops", headers=_JSON)
            await post(path, "empty", content="", headers=_JSON)
            await post(path, "form", content="a=1", headers={"content-type": "text/plain"})
            await post(path, "too many bytes", content=b"[" + b" " * 70_000, headers=_JSON)
            await post(path, "body too slow", content=slow_body(), headers=_JSON)
            await post(path, "bad amount", json=wrap({**kit.txn(1), "amount": -1}))
            await post(path, "two bad fields", json=wrap({**kit.txn(1), "user_id": "7", "x": 1}))
            await post(path, "user id past int64", json=wrap({**kit.txn(1), "user_id": 2**63}))
            gate.fail_calls.add(len(gate.calls) + 1)  # the next model call raises
            await post(path, "model failed", json=wrap(kit.txn(2)))
        await post("/predict/batch", "empty batch", json={"transactions": []})
        await post(
            "/predict/batch", "over max_batch_request", json=_as_batch(*map(kit.txn, range(4)))
        )
        await post("/predict", "valid", json=kit.txn(3))
        await post("/predict/batch", "valid", json=_as_batch(kit.txn(3)))

    expected = {
        ("/readyz", 200),
        ("/readyz", 503),
        *(
            (p, s)
            for p in ("/predict", "/predict/batch")
            for s in (200, 400, 408, 413, 422, 500, 503)
        ),
    }
    assert {(path, r.status_code) for path, _, r, _ in sent} == expected
    for path, method, response, what in sent:
        if response.status_code == 200 and path != "/readyz":
            continue  # success bodies are covered by test_app.py
        check_against_doc(doc, path, method, response, what)
    # every error status a scoring route documents was produced above, and nothing else
    for path in ("/predict", "/predict/batch"):
        statuses = {int(s) for s in doc["paths"][path]["post"]["responses"]}
        produced = {r.status_code for p, _, r, _ in sent if p == path}
        assert statuses == produced, path
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}
    # FastAPI's default 422 (detail as an array) is no longer claimed anywhere
    assert "HTTPValidationError" not in json.dumps(doc)


_JSON = {"content-type": "application/json"}


def _as_batch(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {"transactions": list(bodies)}


async def test_the_checker_catches_the_old_422_description(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """The defect: 422 was documented as FastAPI's HTTPValidationError (``detail`` an array of
    {loc, msg, type}). The server's real 422 does not fit it, and the checker says so."""
    from fastapi.openapi.utils import (
        validation_error_definition,
        validation_error_response_definition,
    )

    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        response = await client.post("/predict", json={**kit.txn(0), "amount": -1})
        doc = (await client.get("/openapi.json")).json()
    assert response.status_code == 422
    old_components = {
        "HTTPValidationError": validation_error_response_definition,
        "ValidationError": validation_error_definition,
    }
    old = {"$ref": "#/components/schemas/HTTPValidationError"}
    problems = schema_problems(response.json(), old, old_components)
    assert problems == ["$.detail: " + repr(response.json()["detail"]) + " is not of type array"]
    # the documented schema now fits the same body
    now = body_schema(documented(doc, "/predict", "post", 422))
    assert schema_problems(response.json(), now, doc["components"]["schemas"]) == []


def test_the_checker_reports_undocumented_keys_wrong_types_and_unknown_keywords() -> None:
    """The checker itself, on hand-made bodies against the documented error schemas."""
    components = {
        name: model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, model in MODELS.items()
    }
    components["FieldError"] = ValidationErrorResponse.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )["$defs"]["FieldError"]
    for schema in components.values():
        schema.pop("$defs", None)
    ref = {"$ref": "#/components/schemas/ValidationErrorResponse"}
    good = {
        "detail": "invalid request: amount: bad",
        "errors": [{"field": "amount", "reason": "bad", "type": "x"}],
        "request_id": "r1",
    }
    assert schema_problems(good, ref, components) == []
    assert schema_problems({**good, "trace": "..."}, ref, components) == [
        "$: undocumented key 'trace'"
    ]
    assert set(
        schema_problems({"detail": [], "errors": [], "request_id": "r1"}, ref, components)
    ) == {
        "$.detail: [] is not of type string",
        "$.errors: fewer than 1 items",
    }
    assert set(
        schema_problems({"errors": [{"field": 1}], "request_id": "r1"}, ref, components)
    ) == {
        "$: missing key 'detail'",
        "$.errors[0]: missing key 'reason'",
        "$.errors[0]: missing key 'type'",
        "$.errors[0].field: 1 is not of type string",
    }
    not_ready = {"$ref": "#/components/schemas/NotReadyStatus"}
    assert schema_problems({"ready": True, "reason": "x"}, not_ready, components) == [
        "$.ready: True is not the constant False"
    ]
    assert schema_problems("x", {"type": "string", "pattern": "^a"}, {}) == [
        "$: schema keyword 'pattern' not supported by this checker"
    ]
