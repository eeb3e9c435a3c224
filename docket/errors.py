"""One exception type carries refusals from services to the API and the UI."""


class DocketError(Exception):
    """A refusal with a machine code, a human detail and the HTTP status it maps to.

    Services raise it; the API turns it into ``{"code", "detail"}`` with
    ``status``; the UI shows ``detail`` as a message.
    """

    def __init__(self, code, detail, *, status=400, errors=None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.errors = errors

    def as_dict(self):
        body = {"code": self.code, "detail": self.detail}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_found(what="Not found."):
    return DocketError("not_found", what, status=404)


def forbidden(detail="You do not have permission to perform this action.", code="forbidden"):
    return DocketError(code, detail, status=403)


def conflict(code, detail):
    return DocketError(code, detail, status=409)
