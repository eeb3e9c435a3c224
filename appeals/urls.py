from django.urls import path

from . import views

app_name = "appeals"

urlpatterns = [
    path("", views.appeals_queue, name="queue"),
    path("claim/", views.appeal_claim_view, name="claim"),
    path("<int:appeal_id>/", views.appeal_detail, name="appeal"),
    path("<int:appeal_id>/resolve/", views.appeal_resolve_view, name="appeal-resolve"),
    path("<int:appeal_id>/release/", views.appeal_release_view, name="appeal-release"),
]
