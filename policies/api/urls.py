from django.urls import path

from . import views

urlpatterns = [
    path("policies/", views.PolicyList.as_view(), name="policy-list"),
    path("policies/<slug:slug>/", views.PolicyDetail.as_view(), name="policy-detail"),
    path("thresholds/", views.ThresholdList.as_view(), name="threshold-list"),
    path("threshold-changes/", views.ThresholdChangeListCreate.as_view(), name="threshold-change-list"),
    path("threshold-changes/<int:pk>/", views.ThresholdChangeDetail.as_view(), name="threshold-change-detail"),
    path(
        "threshold-changes/<int:pk>/approve/", views.ThresholdChangeApprove.as_view(), name="threshold-change-approve"
    ),
    path("threshold-changes/<int:pk>/reject/", views.ThresholdChangeReject.as_view(), name="threshold-change-reject"),
    path(
        "threshold-changes/<int:pk>/rollback/",
        views.ThresholdChangeRollback.as_view(),
        name="threshold-change-rollback",
    ),
]
