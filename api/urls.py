"""REST API URLs (mounted at /api/): version 1 under /api/v1/, the OpenAPI schema and its docs page."""
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import views

app_name = "api"

urlpatterns = [
    path("v1/", views.root, name="root"),
    path("v1/token/", views.token, name="token"),
    path("v1/datasets/", views.DatasetList.as_view(), name="datasets"),
    path("v1/datasets/<slug:slug>/", views.DatasetDetail.as_view(), name="dataset"),
    path("v1/datasets/<slug:slug>/import/", views.dataset_import, name="dataset_import"),
    path("v1/datasets/<slug:slug>/separability/", views.dataset_separability, name="dataset_separability"),
    path("v1/studies/", views.StudyList.as_view(), name="studies"),
    path("v1/studies/<slug:slug>/", views.StudyDetail.as_view(), name="study"),
    path("v1/studies/<slug:slug>/comparisons/", views.StudyComparisons.as_view(), name="study_comparisons"),
    path("v1/studies/<slug:slug>/votes/", views.study_votes, name="study_votes"),
    path("v1/studies/<slug:slug>/exclusions/", views.study_exclusions, name="study_exclusions"),
    path("v1/studies/<slug:slug>/leaderboards/", views.study_leaderboards, name="study_leaderboards"),
    path("v1/endpoints/", views.EndpointList.as_view(), name="endpoints"),
    path("v1/endpoints/<slug:name>/", views.EndpointDetail.as_view(), name="endpoint"),
    path("v1/generation-runs/", views.GenerationRunList.as_view(), name="generation_runs"),
    path("v1/generation-runs/<int:pk>/", views.GenerationRunDetail.as_view(), name="generation_run"),
    path("v1/generation-runs/<int:pk>/cancel/", views.generation_run_cancel, name="generation_run_cancel"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", views.docs, name="docs"),
]
