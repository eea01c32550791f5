"""OpenAPI: the staff token scheme (a staff API key acting as its rep or supervisor)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "appease.core.permissions.StaffApiKeyAuthentication"
    name = "StaffToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: a staff API key, acting as its rep or supervisor.",
        }
