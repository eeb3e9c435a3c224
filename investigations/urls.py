from django.urls import path

from . import views

app_name = "investigations"

urlpatterns = [
    path("search/", views.search, name="search"),
    path("subjects/<str:kind>/<path:external_id>/", views.subject_page, name="subject"),
    path("cases/<int:case_id>/reveal/", views.media_reveal, name="reveal"),
]
