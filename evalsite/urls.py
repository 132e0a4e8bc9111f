"""URL map: annotator pages under /s/, public leaderboards, staff dashboard, admin, REST API."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotations.auth import LockoutLoginView

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", LockoutLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("annotations.urls")),
]
