from django.urls import path

from feedback.apis import (
    CaseListApi,
    CaseNextApi,
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
    path("cases/<int:case_id>/resolve", CaseResolveApi.as_view(), name="case-resolve"),
    path("recommendations", RecommendationListApi.as_view(), name="recommendations"),
]
