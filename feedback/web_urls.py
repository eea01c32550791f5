from django.urls import path

from feedback import experiment_views, views

app_name = "cases"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.claim_next, name="next"),
    path("new/", views.case_new, name="new"),
    path("<int:case_id>/", views.case_detail, name="detail"),
    path("recommendations/<int:customer_id>/", views.panel_recommendations, name="panel-recommendations"),
    path("<int:case_id>/claim/", views.claim, name="claim"),
    path("<int:case_id>/note/", views.note, name="note"),
    path("<int:case_id>/issue/", views.issue, name="issue"),
    path("<int:case_id>/apologise/", views.apologise, name="apologise"),
    path("<int:case_id>/resolve/", views.resolve, name="resolve"),
    path("<int:case_id>/reassign/", views.reassign, name="reassign"),
    path("<int:case_id>/escalate/", views.escalate, name="escalate"),
    path("experiment-assignment/<int:customer_id>/", experiment_views.assignment, name="experiment-assignment"),
]
