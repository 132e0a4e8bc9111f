"""The judges pages, mounted at /judges/ by evalsite/urls.py (staff only)."""
from django.urls import path

from . import views

app_name = "judges"

urlpatterns = [
    path("<slug:slug>/", views.study_judges, name="study"),
]
