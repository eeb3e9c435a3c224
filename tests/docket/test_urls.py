"""URL names: the API's live in the `api` namespace, and no full name is used twice.

Two patterns with one name make `reverse` answer with whichever Django meets first, so a page could
post to the API (or a test read the wrong route) without anyone noticing.
"""

from collections import Counter

from django.urls import URLPattern, URLResolver, get_resolver, reverse


def named_routes():
    """Every named URL pattern as (full name, route), the full name with its namespaces (``api:queue-claim``)."""

    def walk(patterns, namespaces, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                inner = [*namespaces, p.namespace] if p.namespace else namespaces
                yield from walk(p.url_patterns, inner, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                yield ":".join([*namespaces, p.name]), prefix + str(p.pattern)

    return list(walk(get_resolver().url_patterns, [], ""))


def test_no_full_url_name_is_used_twice():
    counts = Counter(name for name, _ in named_routes())
    assert {name: n for name, n in counts.items() if n > 1} == {}


def test_every_api_route_is_named_in_the_api_namespace_and_no_other_is():
    routes = named_routes()
    under_api = {name for name, route in routes if route.startswith("api/v1/")}
    assert under_api and all(name.startswith("api:") for name in under_api)
    assert {name for name, route in routes if name.startswith("api:")} == under_api


def test_the_api_and_the_page_of_one_action_reverse_to_their_own_paths():
    assert reverse("api:queue-claim", args=["spam"]) == "/api/v1/queues/spam/claim/"
    assert reverse("queue-claim", args=["spam"]) == "/queues/spam/claim/"
    assert reverse("api:case-detail", args=[7]) == "/api/v1/cases/7/"
    assert reverse("case-detail", args=[7]) == "/cases/7/"
    assert reverse("api:source-confirm", args=["s"]) == "/api/v1/sources/s/confirm/"
    assert reverse("source-confirm", args=["s"]) == "/sources/s/confirm/"
