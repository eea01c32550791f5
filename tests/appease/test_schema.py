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
