from django.urls import path

from appease.apis import (
    CustomerDetailApi,
    CustomerListCreateApi,
    IssuanceApproveApi,
    IssuanceListCreateApi,
    IssuanceRejectApi,
    IssuanceResendApi,
    IssuanceVoidApi,
)
from appease.callbacks import SmsStatusCallbackApi, WebhookStatusCallbackApi

app_name = "appease-api"

urlpatterns = [
    path("issuances", IssuanceListCreateApi.as_view(), name="issuances"),
    path("issuances/<uuid:issuance_id>/approve", IssuanceApproveApi.as_view(), name="issuance-approve"),
    path("issuances/<uuid:issuance_id>/reject", IssuanceRejectApi.as_view(), name="issuance-reject"),
    path("issuances/<uuid:issuance_id>/void", IssuanceVoidApi.as_view(), name="issuance-void"),
    path("issuances/<uuid:issuance_id>/resend", IssuanceResendApi.as_view(), name="issuance-resend"),
    path("delivery/callbacks/sms", SmsStatusCallbackApi.as_view(), name="delivery-callback-sms"),
    path("delivery/callbacks/webhook", WebhookStatusCallbackApi.as_view(), name="delivery-callback-webhook"),
    path("customers", CustomerListCreateApi.as_view(), name="customers"),
    path("customers/<int:customer_id>", CustomerDetailApi.as_view(), name="customer-detail"),
]
