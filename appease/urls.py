from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerView

from appease import health
from appease.core.schema import SchemaApi
from appease.issuance import views as appease_views
from feedback import views as feedback_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="csr:home", permanent=False)),
    path("csr/cases/", include("feedback.web_urls")),
    path("csr/", include("appease.issuance.web_urls")),
    path("s/<str:token>/", feedback_views.survey, name="survey"),
    path("demo/shop/", feedback_views.demo_shop, name="demo-shop"),
    # Login (password or single sign-on), password reset, the admin's staff import.
    path("", include("appease.accounts.urls")),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", appease_views.two_factor, name="two-factor"),
    path("admin/reports/", include("reporting.web_urls")),
    path("admin/orders-import/", admin.site.admin_view(feedback_views.orders_import_page), name="orders-import"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("coupons.urls")),
    path("api/v1/", include("appease.issuance.urls")),
    path("api/v1/", include("appease.delivery.urls")),
    path("api/v1/", include("appease.webhooks.urls")),
    path("api/v1/", include("feedback.urls")),
    path("api/v1/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("i18n/setlang/", appease_views.language_set, name="set_language"),
    path("favicon.ico", appease_views.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]


def handler404(request, exception):
    """The API answers a path it does not know in its own JSON error shape; pages as usual."""
    if request.path.startswith("/api/"):
        from django.http import JsonResponse
        from django.utils.translation import gettext

        return JsonResponse({"error": "not_found", "detail": gettext("Not found.")}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    """An uncaught error. The database unreachable (a restart, a fail-over, the network)
    is a 503 with Retry-After: nothing was written (every write is one transaction, rolled
    back with the connection) and the same request may be sent again. The API answers in
    its JSON shape; a page gets a short text."""
    import sys

    from django.db import InterfaceError, OperationalError
    from django.http import HttpResponse, JsonResponse
    from django.utils.translation import gettext
    from django.views.defaults import server_error

    error = sys.exc_info()[1]  # called while the exception is handled
    api = request.path.startswith("/api/")
    if isinstance(error, OperationalError | InterfaceError):
        detail = gettext("The service is briefly unavailable. Nothing was changed: please try again.")
        if api:
            response = JsonResponse({"error": "service_unavailable", "detail": detail}, status=503)
        else:
            response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response
    if api:
        return JsonResponse({"error": "server_error", "detail": gettext("Server error.")}, status=500)
    return server_error(request)
