"""Hooks: how a lower layer causes an effect that a higher layer provides, without importing it.

The lower layer declares the hook where it needs the effect, and calls it::

    # reviews/webhooks.py: what the user is told about an outbox row (appeals knows more)
    payload_notices = Hook("reviews.payload_notices")
    body.update(payload_notices(enforcement))

    # casework/retention.py: each app purges the personal data it keeps
    personal_data_purgers = Contributions("casework.personal_data_purgers")
    for purge in personal_data_purgers: purge(case_ids=ids)

The higher layer registers its provider at start-up, in its ``AppConfig.ready``::

    payload_notices.register(enforcement_notices)

A ``Hook`` has one provider (registering again replaces it); calling it with
none registered raises ``HookMissing``, so a missing app fails loudly instead
of silently skipping the effect. ``Contributions`` collects any number, called
in registration order; the same function registered twice counts once.
"""

from collections.abc import Callable, Iterator


class HookMissing(RuntimeError):
    pass


class Hook:
    """One provider, registered by a higher layer; calling the hook calls it."""

    def __init__(self, name: str):
        self.name = name
        self._provider: Callable | None = None

    def register(self, provider: Callable) -> Callable:
        self._provider = provider
        return provider

    @property
    def provider(self) -> Callable | None:
        return self._provider

    def __call__(self, *args, **kwargs):
        if self._provider is None:
            raise HookMissing(f"nothing is registered for the hook {self.name} (its app registers it when ready)")
        return self._provider(*args, **kwargs)

    def __repr__(self):
        return f"<Hook {self.name}: {self._provider!r}>"


class Contributions:
    """Any number of providers, each registered by the app that owns what it contributes."""

    def __init__(self, name: str):
        self.name = name
        self._providers: dict[str, Callable] = {}

    def register(self, provider: Callable) -> Callable:
        self._providers[f"{provider.__module__}.{provider.__qualname__}"] = provider
        return provider

    def __iter__(self) -> Iterator[Callable]:
        return iter(list(self._providers.values()))

    def __len__(self):
        return len(self._providers)

    def __repr__(self):
        return f"<Contributions {self.name}: {list(self._providers)}>"
