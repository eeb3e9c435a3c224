from django.urls import path

from . import hygiene as views

urlpatterns = [
    path("sources/", views.SourceListView.as_view(), name="source-list"),
    path("sources/<slug:slug>/confirm/", views.SourceConfirmView.as_view(), name="source-confirm"),
    path("sources/<slug:slug>/quarantine/", views.SourceQuarantineView.as_view(), name="source-quarantine"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
]
