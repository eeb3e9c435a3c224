from django.contrib import admin
from django.urls import include, path

from docket import api_docs
from docket.audit_api import AccessLogList

# The REST API's URL names live in the `api` namespace (`reverse("api:queue-claim")`), so an API name
# can never shadow a moderator page's (`reverse("queue-claim")`); tests/docket/test_urls.py checks
# that no full name is used twice.
api_v1 = [
    path("", include("casework.api.urls")),
    path("", include("reviews.api.urls")),
    path("", include("appeals.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("investigations.api.urls")),
    path("access-log/", AccessLogList.as_view(), name="access-log"),
    path("", include("transparency.api.urls")),
    path("", include("oversight.api.urls")),
]

urlpatterns = [
    path("", include("docket.identity.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", api_docs.schema, name="schema"),
    path("api/docs/", api_docs.docs, name="api-docs"),
    path("", include("casework.urls")),
    path("", include("investigations.urls")),
    path("", include("reviews.urls")),
    path("", include("reviews.work_urls")),
    path("", include("oversight.urls")),
    path("appeals/", include("appeals.urls")),
    path("transparency/", include("transparency.urls")),
]

handler403 = "docket.views.permission_denied"
handler404 = "docket.views.page_not_found"
