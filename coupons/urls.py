from django.urls import path

from coupons.apis import CodeValidateApi, RedemptionCreateApi, RedemptionReverseApi

app_name = "coupons"

urlpatterns = [
    path("codes/validate", CodeValidateApi.as_view(), name="code-validate"),
    path("redemptions", RedemptionCreateApi.as_view(), name="redemption-create"),
    path("redemptions/<uuid:redemption_id>/reverse", RedemptionReverseApi.as_view(), name="redemption-reverse"),
]
