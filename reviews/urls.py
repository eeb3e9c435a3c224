from django.urls import path

from . import views
from .views import work

app_name = "reviews"

urlpatterns = [
    path("", views.home, name="home"),
    path("escalations/", views.escalations, name="escalations"),
    path("queues/<slug:slug>/", views.queue_detail, name="queue"),
    path("queues/<slug:slug>/claim/", views.queue_claim_view, name="queue-claim"),
    path("queues/<slug:slug>/bulk-decision/", views.queue_bulk, name="queue-bulk"),
    path("sources/<slug:slug>/", views.source_detail, name="source"),
    path("sources/<slug:slug>/confirm/", views.source_confirm_view, name="source-confirm"),
    path("sources/<slug:slug>/quarantine/", views.source_quarantine_view, name="source-quarantine"),
    path(
        "sources/<slug:slug>/resolve-incident/",
        views.source_incident_resolve_view,
        name="source-incident-resolve",
    ),
    path("campaigns/", work.campaigns_index, name="campaigns"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:campaign_id>/bulk-decision/", views.campaign_bulk, name="campaign-bulk"),
    path("campaigns/<int:campaign_id>/dismiss/", views.campaign_dismiss_view, name="campaign-dismiss"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("cases/<int:case_id>/decision/", views.case_decide, name="case-decide"),
    path("cases/<int:case_id>/escalate/", views.case_escalate_view, name="case-escalate"),
    path("cases/<int:case_id>/notes/", views.case_note, name="case-note"),
    path("cases/<int:case_id>/assign/", views.case_assign_view, name="case-assign"),
    path("assignments/<int:assignment_id>/renew/", views.assignment_renew_view, name="assignment-renew"),
    path("assignments/<int:assignment_id>/release/", views.assignment_release_view, name="assignment-release"),
    path("assignments/<int:assignment_id>/skip/", views.assignment_skip_view, name="assignment-skip"),
    path("qa/", work.qa_list, name="qa-reviews"),
    path("qa/<int:review_id>/", work.qa_detail, name="qa-review"),
    path("relabel/", work.relabel_list, name="relabel-items"),
    path("relabel/<int:item_id>/", work.relabel_detail, name="relabel-item"),
    path("decisions/mine/", work.my_decisions, name="my-decisions"),
]
