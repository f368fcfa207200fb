"""/healthz and /metrics: thin views over calls.ops.

Both are exempt from LoginRequiredMiddleware: /healthz is for load balancers and orchestrators,
which never log in; /metrics does its own check (a bearer token, or a session of someone who may
read the call history in the admin) and answers 403 rather than redirecting a scraper to the
login page.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from calls import ops

logger = logging.getLogger(__name__)


@login_not_required
@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer answer, else 503 naming the part that failed."""
    report = await ops.health()
    return JsonResponse(report, status=200 if report["status"] == ops.OK else 503)


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# The figures are the call list and the People online page in aggregate, so reading them takes
# what those admin pages take: staff status and the permission to view calls (superusers have it).
METRICS_PERMISSION = "calls.view_call"


def is_operator(request: HttpRequest) -> bool:
    """A staff user who may view calls, or the bearer token from PEERLINE_METRICS_TOKEN (when one
    is set)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff and user.has_perm(METRICS_PERMISSION):
        return True
    expected = settings.PEERLINE_METRICS_TOKEN
    given = _bearer_token(request)
    return bool(expected) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for operators only."""
    if not is_operator(request):
        logger.info("metrics: refused a request without a valid token or an operator's session")
        return HttpResponse(
            f"Forbidden: a metrics token, or a staff login with the {METRICS_PERMISSION} permission, is required.\n",
            status=403, content_type="text/plain; charset=utf-8",
        )
    body = ops.render_prometheus(ops.collect_metrics())
    return HttpResponse(body, content_type=ops.PROMETHEUS_CONTENT_TYPE)
