from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from config.api_docs import docs_page

handler400 = "workflows.errors.bad_request"
handler404 = "workflows.errors.not_found"
handler500 = "workflows.errors.server_error"
# Both documentation pages write styles into the page, and ReDoc renders in a worker.
relaxed_for_docs = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script.
    path("api/v1/docs/", relaxed_for_docs(docs_page(
        SpectacularSwaggerSplitView.as_view(url_name="schema"))), name="api-docs"),
    path("api/v1/redoc/", relaxed_for_docs(docs_page(
        SpectacularRedocView.as_view(url_name="schema"))), name="api-redoc"),
    path("api/v1/", include("exceptions_app.api.urls")),
    path("api/v1/", include("workflows.api.urls")),
    path("", include("workflows.urls")),
    path("", include("exceptions_app.urls")),
]
