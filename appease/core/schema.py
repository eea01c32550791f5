"""OpenAPI: the staff token scheme (a staff API key acting as its rep or supervisor), and
the schema's own view."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView

from appease.core.scopes import STAFF_SCOPES, ScopeRequired


def scope_list(vocabulary: dict) -> str:
    return ", ".join(f"`{scope}` ({label})" for scope, label in vocabulary.items())


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema: public (its shape, not the data), so no key needs a scope."""

    required_scope = None
    permission_classes = [ScopeRequired, *SpectacularAPIView.permission_classes]


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "appease.core.permissions.StaffApiKeyAuthentication"
    name = "StaffToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: a staff API key, acting as its rep or supervisor. "
            "The key holds scopes; each operation names the one it needs (`insufficient_scope`, 403, "
            "otherwise). Staff scopes: " + scope_list(STAFF_SCOPES) + ".",
        }
