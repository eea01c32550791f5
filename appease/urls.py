from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from appease import health
from appease import views as appease_views
from feedback import views as feedback_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="csr:home", permanent=False)),
    path("csr/cases/", include("feedback.web_urls")),
    path("csr/", include("appease.web_urls")),
    path("s/<str:token>/", feedback_views.survey, name="survey"),
    path("demo/shop/", feedback_views.demo_shop, name="demo-shop"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", appease_views.two_factor, name="two-factor"),
    path("admin/reports/", include("reporting.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("coupons.urls")),
    path("api/v1/", include("appease.api_urls")),
    path("api/v1/", include("feedback.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
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
