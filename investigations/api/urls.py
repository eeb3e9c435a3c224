from django.urls import path

from . import views

urlpatterns = [
    path("subjects/", views.SubjectSearch.as_view(), name="subject-search"),
    path("subjects/<str:kind>/<path:external_id>/", views.SubjectDetail.as_view(), name="subject-detail"),
]
