from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from docket.audit_api import AccessLogList

api_v1 = [
    path("", include("casework.api.urls")),
    path("", include("casework.api.hygiene_urls")),
    path("", include("casework.api.retention_urls")),
    path("", include("reviews.api.urls")),
    path("", include("appeals.api.urls")),
    path("", include("policies.api.urls")),
    path("access-log/", AccessLogList.as_view(), name="access-log"),
]

urlpatterns = [
    path("", include("docket.identity.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("casework.urls")),
    path("", include("reviews.urls")),
    path("appeals/", include("appeals.urls")),
]

handler403 = "docket.views.permission_denied"
handler404 = "docket.views.page_not_found"
