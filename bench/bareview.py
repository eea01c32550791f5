"""Ceiling for the redemption benchmark: a bare DRF view that runs only the UPDATE.

Same server, settings and middleware as the product, same request body, no
authentication, no service: it hashes the code and flips it `issued → redeemed` with
the one conditional UPDATE the real service also runs. Served only through
`bench.settings` (ROOT_URLCONF = "bench.bareview"), never from the product's URLs.
"""

from __future__ import annotations

from django.db import connection
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from coupons import codes

REDEEM = (
    "UPDATE coupons_code SET status = 'redeemed', redeemed_at = now() "
    "WHERE lookup_hash = %s AND status = 'issued' AND expires_at > now()"
)


class BareRedeemApi(APIView):
    authentication_classes = []
    permission_classes = []

    def post(self, request):
        lookup_hash = codes.lookup_hash(codes.normalise(str(request.data.get("code", ""))))
        with connection.cursor() as cursor:
            cursor.execute(REDEEM, [lookup_hash])
            won = cursor.rowcount == 1
        return Response({"redeemed": won}, status=201 if won else 409)


urlpatterns = [path("api/v1/redemptions", BareRedeemApi.as_view())]
