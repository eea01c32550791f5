from django.urls import path

from appease.issuance.apis import (
    CustomerDetailApi,
    CustomerListCreateApi,
    IssuanceApproveApi,
    IssuanceDetailApi,
    IssuanceListCreateApi,
    IssuanceRejectApi,
    IssuanceResendApi,
    IssuanceVoidApi,
    OfferListApi,
    ReasonCodeListApi,
)

app_name = "appease-api"

urlpatterns = [
    path("issuances", IssuanceListCreateApi.as_view(), name="issuances"),
    path("issuances/<uuid:issuance_id>", IssuanceDetailApi.as_view(), name="issuance-detail"),
    path("issuances/<uuid:issuance_id>/approve", IssuanceApproveApi.as_view(), name="issuance-approve"),
    path("issuances/<uuid:issuance_id>/reject", IssuanceRejectApi.as_view(), name="issuance-reject"),
    path("issuances/<uuid:issuance_id>/void", IssuanceVoidApi.as_view(), name="issuance-void"),
    path("issuances/<uuid:issuance_id>/resend", IssuanceResendApi.as_view(), name="issuance-resend"),
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<int:customer_id>", CustomerDetailApi.as_view(), name="customer-detail"),
    path("offers", OfferListApi.as_view(), name="offers"),
    path("reason-codes", ReasonCodeListApi.as_view(), name="reason-codes"),
]
