from django.urls import path

from . import views

urlpatterns = [
    path("", views.appeals_queue, name="appeals-queue"),
    path("claim/", views.appeal_claim_view, name="appeals-claim"),
    path("<int:appeal_id>/", views.appeal_detail, name="appeal-detail"),
    path("<int:appeal_id>/resolve/", views.appeal_resolve_view, name="appeal-resolve"),
    path("<int:appeal_id>/release/", views.appeal_release_view, name="appeal-release"),
]
