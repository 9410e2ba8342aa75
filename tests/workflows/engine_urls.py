"""The engine's URLs alone (``engine_settings``): config/urls.py without the domain's."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("workflows.api.urls")),
    path("", include("workflows.urls")),
]

handler400 = "workflows.errors.bad_request"
handler404 = "workflows.errors.not_found"
handler500 = "workflows.errors.server_error"
