"""The judges pages, mounted at /judges/ by evalsite/urls.py (staff only)."""
from django.urls import path

from . import views

app_name = "judges"

urlpatterns = [
    path("<slug:slug>/", views.study_judges, name="study"),
    path("<slug:slug>/runs/", views.start_run, name="start_run"),
    path("<slug:slug>/runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("<slug:slug>/runs/<int:pk>/cancel/", views.cancel_run, name="cancel_run"),
    path("<slug:slug>/prompt/", views.save_prompt, name="save_prompt"),
]
