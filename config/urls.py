from django.contrib import admin
from django.urls import include, path

from calls import ops_views

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("calls.urls")),
]
