from drf_spectacular.extensions import OpenApiAuthenticationExtension


class MerchantApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "coupons.auth.MerchantApiKeyAuthentication"
    name = "MerchantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as printed when the key was created in the admin.",
        }
