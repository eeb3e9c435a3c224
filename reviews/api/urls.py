from django.urls import path

from . import views

urlpatterns = [
    path("queues/", views.QueueListView.as_view(), name="queue-list"),
    path("queues/<slug:slug>/claim/", views.QueueClaimView.as_view(), name="queue-claim"),
    path("assignments/<int:pk>/renew/", views.AssignmentActionView.as_view(action="renew"), name="assignment-renew"),
    path(
        "assignments/<int:pk>/release/",
        views.AssignmentActionView.as_view(action="release"),
        name="assignment-release",
    ),
    path("assignments/<int:pk>/skip/", views.AssignmentActionView.as_view(action="skip"), name="assignment-skip"),
    path("cases/<int:pk>/assign/", views.CaseAssignView.as_view(), name="case-assign"),
    path("cases/<int:pk>/decision/", views.CaseDecisionView.as_view(), name="case-decision"),
    path("cases/<int:pk>/escalate/", views.CaseEscalateView.as_view(), name="case-escalate"),
    path("decisions/<int:pk>/", views.DecisionDetailView.as_view(), name="decision-detail"),
    path(
        "decisions/<int:pk>/statement-of-reasons/",
        views.StatementOfReasonsView.as_view(),
        name="decision-statement-of-reasons",
    ),
    path("campaigns/<int:pk>/decision/", views.CampaignDecisionView.as_view(), name="campaign-decision"),
    path("campaigns/<int:pk>/dismiss/", views.CampaignDismissView.as_view(), name="campaign-dismiss"),
    path("quality-reviews/", views.QualityReviewListView.as_view(), name="quality-review-list"),
    path(
        "quality-reviews/<int:pk>/complete/",
        views.QualityReviewCompleteView.as_view(),
        name="quality-review-complete",
    ),
    path("relabels/", views.RelabelList.as_view(), name="relabel-list"),
    path("relabels/<int:pk>/complete/", views.RelabelComplete.as_view(), name="relabel-complete"),
]
