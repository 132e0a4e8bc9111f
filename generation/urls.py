"""Staff pages of the generation app (mounted at /generation/): runs, their progress, endpoints."""
from django.urls import path

from . import views

app_name = "generation"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new_run, name="new_run"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("runs/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("endpoints/", views.endpoint_list, name="endpoints"),
    path("endpoints/new/", views.endpoint_form, name="endpoint_new"),
    path("endpoints/<slug:name>/edit/", views.endpoint_form, name="endpoint_edit"),
]
