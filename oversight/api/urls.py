from django.urls import path

from . import views

urlpatterns = [
    path("metrics/", views.Metrics.as_view(), name="metrics"),
]
