"""The API's schema generator (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS)."""

from drf_spectacular.openapi import AutoSchema

from appease.core.api import ERROR
from appease.core.scopes import UNDECLARED, scopes_for


class ScopedAutoSchema(AutoSchema):
    """Each operation says which API key scope opens it: `x-required-scopes` (any one of
    them), and a line of its description. (OpenAPI 3.0 lists scopes in security
    requirements for OAuth only, so not there.)"""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return operation
        scopes = scopes_for(type(self.view), self.method)
        if scopes is None or scopes is UNDECLARED:
            return operation
        operation["x-required-scopes"] = list(scopes)
        responses = operation.setdefault("responses", {})
        if "403" not in responses:  # any key without the scope is refused: say so
            responses["403"] = self._get_response_for_code(ERROR, "403")
            responses["403"]["description"] = "insufficient_scope: the API key lacks the scope."
        named = " or ".join(f"`{scope}`" for scope in scopes)
        line = f"API key scope: {named}."
        operation["description"] = f"{operation['description']}\n\n{line}" if operation.get("description") else line
        return operation
