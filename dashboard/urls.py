"""Staff dashboard URLs (mounted at /dashboard/)."""
from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("studies/<slug:slug>/", views.study, name="study"),
    path("studies/<slug:slug>/planner/", views.planner, name="planner"),
    path("plan/", views.form_planner, name="form_planner"),
    path("studies/<slug:slug>/export/<str:fmt>/", views.export_votes, name="export_votes"),
    path("studies/<slug:slug>/annotators/<int:user_id>/exclusion/", views.exclude_annotator,
         name="exclude_annotator"),
    path("datasets/<slug:slug>/separability/", views.separability, name="separability"),
    path("datasets/<slug:slug>/separability/run/", views.start_run, name="start_run"),
    path("datasets/<slug:slug>/separability/export/", views.export_separability, name="export_separability"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("exports/<int:pk>/", views.export_job, name="export_job"),
    path("exports/<int:pk>/progress/", views.export_progress, name="export_progress"),
    path("exports/<int:pk>/download/", views.export_download, name="export_download"),
]
