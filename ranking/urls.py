"""Public leaderboards, mounted at /leaderboard/ by evalsite/urls.py."""
from django.urls import path

from . import views

app_name = "ranking"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.study_leaderboard, name="study"),
    path("<slug:slug>.json", views.study_leaderboard_json, name="study_json"),
    path("<slug:slug>/release/", views.release_now, name="release"),
]
