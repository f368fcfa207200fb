from django.urls import path

from calls.consumers import SignalConsumer

websocket_urlpatterns = [path("ws/signal/", SignalConsumer.as_asgi())]
