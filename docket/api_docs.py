"""The API's own documentation: the OpenAPI document and its Swagger UI page, for signed-in accounts only."""

from django.contrib.auth.decorators import login_required
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer


class SchemaView(SpectacularAPIView):
    """The OpenAPI document (YAML, or JSON on request). A refusal answers the JSON error envelope,
    like every other endpoint, rather than an error rendered as an OpenAPI document."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response


schema = SchemaView.as_view()
# A page for people: an anonymous visitor is sent to sign in, then back.
docs = login_required(SpectacularSwaggerView.as_view(url_name="api:schema"))
