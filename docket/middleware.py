"""Request guards that apply before any view runs."""

from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    """Refuse API bodies larger than ``DOCKET_MAX_BODY_BYTES`` with a clear 413.

    DRF's parsers read the stream directly, so Django's own upload limit does
    not cover JSON bodies; this does, before anything is read or written.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse({"code": "invalid", "detail": "Malformed Content-Length header."}, status=400)
            if self.limit and length > self.limit:
                return JsonResponse(
                    {
                        "code": "payload_too_large",
                        "detail": f"The body is {length} bytes; the limit is {self.limit} bytes. "
                        "Split the batch (at most 1,000 signals per request).",
                    },
                    status=413,
                )
        return self.get_response(request)
