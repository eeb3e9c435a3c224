"""Rate limits. Kept apart from docket.api: DRF's APIView reads this class at import."""

import logging

from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class ScopedThrottle(ScopedRateThrottle):
    """Per-account rate limits for views naming a ``throttle_scope``.

    Fails open: a cache (Redis) outage must not turn into refused intake.
    """

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("rate limit not checked: cache unavailable", exc_info=True)
            return True
