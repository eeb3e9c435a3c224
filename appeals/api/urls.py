from django.urls import path

from . import views

urlpatterns = [
    path("appeals/", views.AppealListCreateView.as_view(), name="appeal-list"),
    path("appeals/claim/", views.AppealClaimView.as_view(), name="appeal-claim"),
    path("appeals/<int:pk>/", views.AppealDetailView.as_view(), name="appeal-detail"),
    path("appeals/<int:pk>/resolve/", views.AppealResolveView.as_view(), name="appeal-resolve"),
    path("appeals/<int:pk>/release/", views.AppealReleaseView.as_view(), name="appeal-release"),
]
