from django.urls import path

from .retention import CaseExportView

urlpatterns = [path("cases/<int:pk>/export/", CaseExportView.as_view(), name="case-export")]
