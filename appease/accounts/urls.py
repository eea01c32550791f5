from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from appease.accounts import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/sso/start/", views.SSOStartView.as_view(), name="oidc_authentication_init"),
    path("accounts/sso/callback/", views.SSOCallbackView.as_view(), name="oidc_authentication_callback"),
    path("accounts/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/staff-import/", admin.site.admin_view(views.staff_import_page), name="staff-import"),
]
