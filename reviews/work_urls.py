from django.urls import path

from . import work_views

urlpatterns = [
    path("qa/", work_views.qa_list, name="qa-list"),
    path("qa/<int:review_id>/", work_views.qa_detail, name="qa-detail"),
    path("relabel/", work_views.relabel_list, name="relabel-list"),
    path("relabel/<int:item_id>/", work_views.relabel_detail, name="relabel-detail"),
    path("decisions/mine/", work_views.my_decisions, name="my-decisions"),
    path("campaigns/", work_views.campaigns_index, name="campaigns"),
]
