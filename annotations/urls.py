"""Annotator pages (/s/<slug>/..., /invite/<token>/) and the staff study pages (/studies/...)."""
from django.urls import path

from . import views

app_name = "annotations"

urlpatterns = [
    path("s/<slug:slug>/", views.annotate, name="annotate"),
    path("s/<slug:slug>/vote/", views.vote, name="vote"),
    path("s/<slug:slug>/done/", views.done, name="done"),
    path("s/<slug:slug>/enter/", views.prolific_entry, name="prolific_entry"),
    path("invite/<str:token>/", views.invite, name="invite"),
    path("r/<str:key>/", views.reenter, name="reenter"),
    path("studies/", views.study_list, name="study_list"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/new/systems/", views.study_form_systems, name="study_form_systems"),
    path("studies/<slug:slug>/", views.study_detail, name="study_detail"),
    path("studies/<slug:slug>/edit/", views.study_edit, name="study_edit"),
    path("studies/<slug:slug>/open/", views.study_open, name="study_open"),
    path("studies/<slug:slug>/close/", views.study_close, name="study_close"),
    path("studies/<slug:slug>/invites/", views.invite_create, name="invite_create"),
    path("studies/<slug:slug>/invites/<int:pk>/toggle/", views.invite_toggle, name="invite_toggle"),
]
