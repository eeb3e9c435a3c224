from django.urls import path
from rest_framework.routers import SimpleRouter

from . import hygiene
from .retention import CaseExportView
from .views import CaseViewSet, SignalIntakeView

router = SimpleRouter(trailing_slash=True)
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    path("signals/", SignalIntakeView.as_view(), name="signals"),
    *router.urls,
    path("cases/<int:pk>/export/", CaseExportView.as_view(), name="case-export"),
    path("sources/", hygiene.SourceListView.as_view(), name="source-list"),
    path("sources/<slug:slug>/confirm/", hygiene.SourceConfirmView.as_view(), name="source-confirm"),
    path("sources/<slug:slug>/quarantine/", hygiene.SourceQuarantineView.as_view(), name="source-quarantine"),
    path("campaigns/", hygiene.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", hygiene.CampaignDetailView.as_view(), name="campaign-detail"),
]
