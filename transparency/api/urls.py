from django.urls import path

from . import views

urlpatterns = [
    path("transparency-report/", views.TransparencyReportView.as_view(), name="transparency-report"),
]
