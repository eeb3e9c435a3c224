"""Logging pieces: expected refusals stay one line."""

import logging


class ExpectedRefusalFilter(logging.Filter):
    """A 403 or 404 is an answer, not a fault: log its one line without the traceback.

    Django logs ``PermissionDenied`` with the exception attached, which prints
    a traceback for every refused page; the line (method, path, status) is
    what an operator needs.
    """

    def filter(self, record):
        if getattr(record, "status_code", None) in (403, 404):
            record.exc_info = None
            record.exc_text = None
        return True
