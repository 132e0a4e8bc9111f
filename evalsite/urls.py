"""URL map: annotator pages under /s/, public leaderboards, staff dashboard, admin, REST API."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from annotations.auth import LockoutLoginView

from . import views

handler404 = "evalsite.views.not_found"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (Django's admin): no 404 in every log.
    path("favicon.ico", RedirectView.as_view(url="/static/favicon.svg", permanent=True), name="favicon"),
    path("accounts/login/", LockoutLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # One login page for everyone, so the lockout also guards the admin.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("api/", include("api.urls")),
    path("leaderboard/", include("ranking.urls")),
    path("judges/", include("judges.urls")),
    path("generation/", include("generation.urls")),
    path("", include("annotations.urls")),
]
