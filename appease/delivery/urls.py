from django.urls import path

from appease.delivery.callbacks import SmsStatusCallbackApi, WebhookStatusCallbackApi

app_name = "delivery-api"

urlpatterns = [
    path("delivery/callbacks/sms", SmsStatusCallbackApi.as_view(), name="delivery-callback-sms"),
    path("delivery/callbacks/webhook", WebhookStatusCallbackApi.as_view(), name="delivery-callback-webhook"),
]
