from django.urls import path

from . import views

app_name = "calls"

urlpatterns = [
    path("", views.LobbyView.as_view(), name="lobby"),
    path("devices/", views.DeviceCheckView.as_view(), name="devices"),
    path("history/", views.HistoryView.as_view(), name="history"),
]
