"""Pages. Thin: the lobby and device check are static shells driven by static/calls/js."""

from django.urls import reverse
from django.utils.http import urlencode
from django.views.generic import ListView, TemplateView

from calls import display, selectors, services


class LobbyView(TemplateView):
    template_name = "calls/lobby.html"


class DeviceCheckView(TemplateView):
    template_name = "calls/devices.html"


class HistoryView(ListView):
    """The user's own calls: all / incoming / outgoing / missed (?kind=), newest first.

    Opening it marks missed calls as seen, which clears the badge in the navigation."""

    template_name = "calls/history.html"
    context_object_name = "calls"
    paginate_by = 50

    def get(self, request, *args, **kwargs):
        kind = request.GET.get("kind", "all")
        self.kind = kind if kind in selectors.HISTORY_KINDS else "all"
        self.seen_before = services.history_mark_seen(user=request.user)
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.call_history_of_kind(user=self.request.user, kind=self.kind)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["kind"] = self.kind
        context["kinds"] = [(k, k.capitalize()) for k in selectors.HISTORY_KINDS]
        context["rows"] = [self._row(call, user) for call in context["calls"]]
        return context

    def _row(self, call, user) -> dict:
        other = call.other_party(user)
        incoming = call.callee_id == user.pk
        missed = incoming and call.status == call.Status.MISSED
        media = display.callback_media(call)
        return {
            "call": call,
            "other": other,
            "direction": "incoming" if incoming else "outgoing",
            "missed": missed,
            "new": missed and (self.seen_before is None or call.ended_at > self.seen_before),
            "duration": display.format_duration(call.duration_s),
            "outcome": call.get_end_reason_display() if call.answered_at is None else "",
            "callback_media": media,
            "callback_url": f"{reverse('calls:lobby')}?{urlencode({'call': other.username, 'media': media})}"
            if other.is_active
            else "",
        }
