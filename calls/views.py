"""Pages. Thin: the lobby and device check are static shells driven by static/calls/js."""

from django.views.generic import TemplateView


class LobbyView(TemplateView):
    template_name = "calls/lobby.html"


class DeviceCheckView(TemplateView):
    template_name = "calls/devices.html"


class HistoryView(TemplateView):
    template_name = "calls/history.html"
