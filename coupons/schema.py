from drf_spectacular.extensions import OpenApiAuthenticationExtension

from appease.core.schema import scope_list
from appease.core.scopes import MERCHANT_SCOPES


class MerchantApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "coupons.auth.MerchantApiKeyAuthentication"
    name = "MerchantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as printed when the key was created in the admin. "
            "The key holds scopes; each operation names the one it needs (`insufficient_scope`, 403, "
            "otherwise). Merchant scopes: " + scope_list(MERCHANT_SCOPES) + ".",
        }
