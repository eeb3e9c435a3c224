"""URL names: every one lives in a namespace, the API's (and its documentation's) in `api`, each app's pages
in the app's own (`reviews:queue-claim`, `appeals:appeal`, sign-in in `identity`), and no full name is used
twice.

Two patterns with one name make `reverse` answer with whichever Django meets first, so a page could post to the
API (or a test read the wrong route) without anyone noticing; a page named outside its app's namespace is found
only by knowing which app happened to be included first.
"""

from collections import Counter

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# The namespaces that are not an app's pages: the REST API (with its schema and docs) and the Django admin.
NOT_PAGES = {"api", "admin"}

# Every moderator-facing page keeps its public path; the names are how code reaches them.
PAGES = {
    "identity:login": "login/",
    "identity:login-second-factor": "login/second-factor/",
    "identity:login-enrol": "login/enrol/",
    "identity:logout": "logout/",
    "identity:oidc-start": "oidc/authenticate/",
    "identity:oidc-callback": "oidc/callback/",
    "identity:admin-login": "admin/login/",
    "api:schema": "api/schema/",
    "api:docs": "api/docs/",
    "casework:sources": "sources/",
    "casework:thresholds": "thresholds/",
    "casework:threshold-change": "threshold-changes/<int:change_id>/",
    "casework:threshold-change-approve": "threshold-changes/<int:change_id>/approve/",
    "casework:threshold-change-reject": "threshold-changes/<int:change_id>/reject/",
    "investigations:search": "search/",
    "investigations:subject": "subjects/<str:kind>/<path:external_id>/",
    "investigations:reveal": "cases/<int:case_id>/reveal/",
    "reviews:home": "",
    "reviews:escalations": "escalations/",
    "reviews:queue": "queues/<slug:slug>/",
    "reviews:queue-claim": "queues/<slug:slug>/claim/",
    "reviews:queue-bulk": "queues/<slug:slug>/bulk-decision/",
    "reviews:source": "sources/<slug:slug>/",
    "reviews:source-confirm": "sources/<slug:slug>/confirm/",
    "reviews:source-quarantine": "sources/<slug:slug>/quarantine/",
    "reviews:source-incident-resolve": "sources/<slug:slug>/resolve-incident/",
    "reviews:campaigns": "campaigns/",
    "reviews:campaign": "campaigns/<int:campaign_id>/",
    "reviews:campaign-bulk": "campaigns/<int:campaign_id>/bulk-decision/",
    "reviews:campaign-dismiss": "campaigns/<int:campaign_id>/dismiss/",
    "reviews:case": "cases/<int:case_id>/",
    "reviews:case-decide": "cases/<int:case_id>/decision/",
    "reviews:case-escalate": "cases/<int:case_id>/escalate/",
    "reviews:case-note": "cases/<int:case_id>/notes/",
    "reviews:case-assign": "cases/<int:case_id>/assign/",
    "reviews:assignment-renew": "assignments/<int:assignment_id>/renew/",
    "reviews:assignment-release": "assignments/<int:assignment_id>/release/",
    "reviews:assignment-skip": "assignments/<int:assignment_id>/skip/",
    "reviews:qa-reviews": "qa/",
    "reviews:qa-review": "qa/<int:review_id>/",
    "reviews:relabel-items": "relabel/",
    "reviews:relabel-item": "relabel/<int:item_id>/",
    "reviews:my-decisions": "decisions/mine/",
    "oversight:dashboard": "dashboard/",
    "appeals:queue": "appeals/",
    "appeals:claim": "appeals/claim/",
    "appeals:appeal": "appeals/<int:appeal_id>/",
    "appeals:appeal-resolve": "appeals/<int:appeal_id>/resolve/",
    "appeals:appeal-release": "appeals/<int:appeal_id>/release/",
    "transparency:report": "transparency/",
}


def named_routes():
    """Every named URL pattern as (full name, route, URLconf module that declares it), the full name with its
    namespaces (``api:queue-claim``); the module is None for a pattern listed in place (``docket/urls.py``)."""

    def walk(patterns, namespaces, prefix, module):
        for p in patterns:
            if isinstance(p, URLResolver):
                inner = [*namespaces, p.namespace] if p.namespace else namespaces
                conf = getattr(p.urlconf_name, "__name__", module)
                yield from walk(p.url_patterns, inner, prefix + str(p.pattern), conf)
            elif isinstance(p, URLPattern) and p.name:
                yield ":".join([*namespaces, p.name]), prefix + str(p.pattern), module

    return list(walk(get_resolver().url_patterns, [], "", None))


def app_of(module):
    """The app a URLconf module belongs to: ``reviews.urls`` -> ``reviews``, ``docket.identity.urls`` ->
    ``identity``."""
    return module.rsplit(".", 2)[-2] if module else None


def test_no_full_url_name_is_used_twice():
    counts = Counter(name for name, _, _ in named_routes())
    assert {name: n for name, n in counts.items() if n > 1} == {}


def test_every_api_route_is_named_in_the_api_namespace_and_no_other_is():
    routes = named_routes()
    under_api = {name for name, route, _ in routes if route.startswith("api/")}
    assert under_api and all(name.startswith("api:") for name in under_api)
    assert {name for name, _, _ in routes if name.startswith("api:")} == under_api


def pages_outside_their_app(routes):
    """The pages (not API, not admin) whose name is not in the namespace of the app that declares them, with
    that app's URLconf module."""
    outside = {}
    for name, _, module in routes:
        namespace = name.split(":")[0] if ":" in name else None
        if namespace not in NOT_PAGES and (namespace is None or namespace != app_of(module)):
            outside[name] = module
    return outside


def test_every_page_is_named_in_the_namespace_of_the_app_that_declares_it():
    assert pages_outside_their_app(named_routes()) == {}


def test_a_page_named_outside_its_app_is_found():
    routes = [
        ("queue-claim", "queues/<slug:slug>/claim/", "reviews.urls"),
        ("casework:case", "cases/<int:case_id>/", "reviews.urls"),
        ("status", "status/", None),
        ("reviews:case", "cases/<int:case_id>/", "reviews.urls"),
        ("identity:login", "login/", "docket.identity.urls"),
        ("api:schema", "api/schema/", None),
    ]
    assert pages_outside_their_app(routes) == {
        "queue-claim": "reviews.urls",
        "casework:case": "reviews.urls",
        "status": None,
    }


def test_every_page_keeps_its_public_path():
    routes = {name: route for name, route, _ in named_routes()}
    assert {name: routes.get(name) for name in PAGES} == PAGES


def test_the_api_and_the_page_of_one_action_reverse_to_their_own_paths():
    assert reverse("api:queue-claim", args=["spam"]) == "/api/v1/queues/spam/claim/"
    assert reverse("reviews:queue-claim", args=["spam"]) == "/queues/spam/claim/"
    assert reverse("api:case-detail", args=[7]) == "/api/v1/cases/7/"
    assert reverse("reviews:case", args=[7]) == "/cases/7/"
    assert reverse("api:source-confirm", args=["s"]) == "/api/v1/sources/s/confirm/"
    assert reverse("reviews:source-confirm", args=["s"]) == "/sources/s/confirm/"
