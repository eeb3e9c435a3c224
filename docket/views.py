"""Pages of the core: where each kind of account starts, and the error pages in the site layout.

The core imports no app: these pages link to the apps' pages by URL name only.
"""

from django.http import HttpResponseForbidden, HttpResponseNotFound, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader

from docket import roles


def landing(request):
    """The start page of a signed-in user who does not work case queues.

    Appeals staff go to their queue; policy admins and superusers get the
    governance links; a platform (API) account is told what it is; a user with
    no role is told to ask for one. Moderators and seniors never get here (their
    start page is their queues).
    """
    user = request.user
    if roles.has(user, roles.APPEALS):
        return redirect("appeals:queue")
    if user.is_superuser or roles.has(user, roles.POLICY_ADMIN):
        return render(request, "docket/landing_admin.html", {"is_policy_admin": roles.has(user, roles.POLICY_ADMIN)})
    if roles.has(user, roles.PLATFORM):
        return render(request, "docket/landing_api.html")
    return render(request, "docket/landing_no_role.html", status=403)


def permission_denied(request, exception=None):
    """403 in the site layout (navigation and sign-out), or the API's error envelope under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "forbidden", "detail": "Your role does not allow this."}, status=403)
    template = loader.get_template("403.html")
    return HttpResponseForbidden(template.render({"exception": exception}, request))


def page_not_found(request, exception=None):
    """404 in the site layout, or the API's error envelope under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": "No such endpoint."}, status=404)
    template = loader.get_template("404.html")
    return HttpResponseNotFound(template.render({"exception": exception}, request))
