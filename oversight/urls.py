from django.urls import path

from . import views

app_name = "oversight"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
]
