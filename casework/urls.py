from django.urls import path

from . import views

app_name = "casework"

urlpatterns = [
    path("sources/", views.sources_index, name="sources"),
    path("thresholds/", views.thresholds_index, name="thresholds"),
    path("threshold-changes/<int:change_id>/", views.threshold_change_detail, name="threshold-change"),
    path(
        "threshold-changes/<int:change_id>/approve/",
        views.threshold_change_approve_view,
        name="threshold-change-approve",
    ),
    path(
        "threshold-changes/<int:change_id>/reject/",
        views.threshold_change_reject_view,
        name="threshold-change-reject",
    ),
]
