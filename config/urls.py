from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.api_docs import docs_page

handler500 = "workflows.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", docs_page(SpectacularSwaggerView.as_view(url_name="schema")),
         name="api-docs"),
    path("api/v1/redoc/", docs_page(SpectacularRedocView.as_view(url_name="schema")),
         name="api-redoc"),
    path("api/v1/", include("exceptions_app.api.urls")),
    path("api/v1/", include("workflows.api.urls")),
    path("", include("workflows.urls")),
    path("", include("exceptions_app.urls")),
]
