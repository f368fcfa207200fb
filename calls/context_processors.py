"""Template context for every page: the missed-calls badge in the navigation."""

from functools import cache

from calls import selectors


def missed_calls(request) -> dict:
    """`missed_calls_unseen`: computed only if a template uses it, once per request, and only
    for logged-in users (admin pages never ask, so they pay nothing)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @cache
    def count() -> int:
        return selectors.missed_calls_unseen_count(user=user)

    return {"missed_calls_unseen": count}
