from pathlib import Path

from django.conf import settings
from django.core.management import call_command


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    """Every endpoint is described, no two components share a name, every auth scheme
    is known: drf-spectacular refuses (with --fail-on-warn) otherwise."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    schema = target.read_text()
    for path in ["/api/v1/redemptions", "/api/v1/codes/validate", "/api/v1/issuances", "/api/v1/customers"]:
        assert f"{path}:" in schema
    assert "RedemptionCreateInput" in schema and "CodeValidateInput" in schema


REGENERATE = "python manage.py spectacular --file docs/openapi.yaml"


def test_the_served_schema_passes_a_strict_openapi_validator(client):
    """openapi-spec-validator refused the schema we served (an `email` string whose
    default was "", in the feedback intake)."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    spec = client.get("/api/v1/schema/?format=json").json()
    try:
        validate(spec)
    except OpenAPIValidationError as error:
        raise AssertionError(f"the served OpenAPI schema is invalid: {error}") from None


def test_the_committed_schema_is_the_one_served(tmp_path):
    """docs/openapi.yaml is what clients read and review: it must not drift from the code."""
    target = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(target))
    committed = Path(settings.BASE_DIR, "docs", "openapi.yaml").read_text()
    assert target.read_text() == committed, f"docs/openapi.yaml is out of date: run `{REGENERATE}` and commit it"


OPERATIONS = ("get", "put", "post", "patch", "delete")


def served_operations(client):
    spec = client.get("/api/v1/schema/?format=json").json()
    for path, item in spec["paths"].items():
        for method in OPERATIONS:
            if method in item:
                yield spec, f"{method.upper()} {path}", item[method]


def example_sites(operation):
    """(where, media type schema, examples) for the request body and every response."""
    for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
        yield f"request {media_type}", "request", content.get("schema"), content.get("examples", {})
    for status_code, response in operation.get("responses", {}).items():
        for media_type, content in (response.get("content") or {}).items():
            yield f"{status_code} {media_type}", "response", content.get("schema"), content.get("examples", {})


def test_every_operation_has_an_example(client):
    """An integrator reads an example before the schema: every operation shows at least
    one, of its request body or of one of its answers."""
    missing = [
        name
        for _spec, name, operation in served_operations(client)
        if not any(examples for _where, _direction, _schema, examples in example_sites(operation))
    ]
    assert missing == [], f"operations without an example: {missing}"


def strict(schema):
    """The schema as our answers mean it, for checking examples: every object closed to
    keys it does not name, so an example with a misspelt or renamed field fails (the
    serializers' schemas allow any extra key); and a nullable `allOf` reference (how the
    generator writes a nullable nested object) accepting null, as the validator reads
    `nullable` beside `type` only."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    if schema.get("nullable") and "allOf" in schema:
        schema["anyOf"] = [{"allOf": schema.pop("allOf")}, {"enum": [None]}]
    return schema


def test_every_example_matches_its_schema(client):
    """Each request example validates against its operation's request schema and each
    answer's example against that answer's schema ($refs resolved against the
    components, OpenAPI 3.0's `nullable`, formats checked, no unknown field): the
    examples cannot drift from the serializers."""
    from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

    validators = {"request": OAS30WriteValidator, "response": OAS30ReadValidator}
    wrong, seen = [], 0
    for spec, name, operation in served_operations(client):
        # An error may carry more than its shape names (a refusal's `currency` or
        # `min_order`): the Error object stays open.
        components = {
            "schemas": {
                key: schema if key == "Error" else strict(schema)
                for key, schema in spec["components"]["schemas"].items()
            }
        }
        for where, direction, schema, examples in example_sites(operation):
            for key, example in examples.items():
                seen += 1
                validator = validators[direction](
                    {**strict(schema), "components": components}, format_checker=oas30_format_checker
                )
                for error in validator.iter_errors(example["value"]):
                    path = "/".join(str(part) for part in error.absolute_path)
                    wrong.append(f"{name} {where} example {key!r} at /{path}: {error.message}")
    assert wrong == [], "\n".join(wrong)
    assert seen > 50  # the examples were found, not skipped
