from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.api_docs import docs_page

handler400 = "workflows.errors.bad_request"
handler403 = "workflows.errors.permission_denied"
handler404 = "workflows.errors.not_found"
handler500 = "workflows.errors.server_error"
# Swagger UI writes styles into the page.
relaxed_for_docs = csp_update({"style-src": [UNSAFE_INLINE]})

urlpatterns = [
    path("admin/", admin.site.urls),
    # Pages link their icon; this answers what browsers ask for on their own (the admin,
    # the API docs, a JSON answer opened in a tab) instead of a 404.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script.
    path("api/v1/docs/", relaxed_for_docs(docs_page(
        SpectacularSwaggerSplitView.as_view(url_name="schema"))), name="api-docs"),
    # ReDoc fetched its fonts and logo from the internet; its old address leads to Swagger UI,
    # which is served whole from here.
    path("api/v1/redoc/", RedirectView.as_view(pattern_name="api-docs"),
         name="api-redoc"),
    path("api/v1/", include("exceptions_app.api.urls")),
    path("api/v1/", include("workflows.api.urls")),
    path("", include("workflows.urls")),
    path("", include("exceptions_app.urls")),
]
