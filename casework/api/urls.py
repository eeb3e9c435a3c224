from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import CaseViewSet, SignalIntakeView

router = SimpleRouter(trailing_slash=True)
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    path("signals/", SignalIntakeView.as_view(), name="signals"),
    *router.urls,
]
