from django.urls import path

from feedback.apis import (
    CaseClaimApi,
    CaseDetailApi,
    CaseEscalateApi,
    CaseIssueApi,
    CaseListApi,
    CaseNextApi,
    CaseReassignApi,
    CaseReplyApi,
    CaseResolveApi,
    EventIntakeApi,
    FeedbackIntakeApi,
    RecommendationListApi,
)

app_name = "feedback-api"

urlpatterns = [
    path("feedback", FeedbackIntakeApi.as_view(), name="feedback"),
    path("events", EventIntakeApi.as_view(), name="events"),
    path("cases", CaseListApi.as_view(), name="cases"),
    path("cases/next", CaseNextApi.as_view(), name="case-next"),
    path("cases/<int:case_id>", CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:case_id>/claim", CaseClaimApi.as_view(), name="case-claim"),
    path("cases/<int:case_id>/reply", CaseReplyApi.as_view(), name="case-reply"),
    path("cases/<int:case_id>/issue", CaseIssueApi.as_view(), name="case-issue"),
    path("cases/<int:case_id>/resolve", CaseResolveApi.as_view(), name="case-resolve"),
    path("cases/<int:case_id>/reassign", CaseReassignApi.as_view(), name="case-reassign"),
    path("cases/<int:case_id>/escalate", CaseEscalateApi.as_view(), name="case-escalate"),
    path("recommendations", RecommendationListApi.as_view(), name="recommendations"),
]
