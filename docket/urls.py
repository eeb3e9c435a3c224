from django.contrib import admin
from django.urls import include, path

from docket import api_docs
from docket.audit_api import AccessLogList

# Every URL name lives in a namespace: the REST API's and its documentation's in `api`
# (`reverse("api:queue-claim")`), each app's pages in the app's own (`reverse("reviews:queue-claim")`,
# `{% url 'appeals:appeal' pk %}`), sign-in in `identity`. So an API name can never shadow a page's,
# nor one app's page another's; tests/docket/test_urls.py refuses a name outside its app's namespace
# and a full name used twice.
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

api = [
    path("v1/", include(api_v1)),
    path("schema/", api_docs.schema, name="schema"),
    path("docs/", api_docs.docs, name="docs"),
]

urlpatterns = [
    path("", include("docket.identity.urls")),
    path("admin/", admin.site.urls),
    path("api/", include((api, "api"))),
    path("", include("casework.urls")),
    path("", include("investigations.urls")),
    path("", include("reviews.urls")),
    path("", include("oversight.urls")),
    path("appeals/", include("appeals.urls")),
    path("transparency/", include("transparency.urls")),
]

handler403 = "docket.views.permission_denied"
handler404 = "docket.views.page_not_found"
