from django.urls import path

from . import views

urlpatterns = [
    path("", views.transparency_report_page, name="transparency-report"),
]
