from django.urls import path

from coupons.apis import CodeValidateApi, RedemptionDetailApi, RedemptionListCreateApi, RedemptionReverseApi

app_name = "coupons"

urlpatterns = [
    path("codes/validate", CodeValidateApi.as_view(), name="code-validate"),
    # GET lists (merchant key, supervisor), POST redeems (merchant key): one path.
    path("redemptions", RedemptionListCreateApi.as_view(), name="redemption-create"),
    path("redemptions/<uuid:redemption_id>", RedemptionDetailApi.as_view(), name="redemption-detail"),
    path("redemptions/<uuid:redemption_id>/reverse", RedemptionReverseApi.as_view(), name="redemption-reverse"),
]
