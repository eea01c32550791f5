from django.urls import path

from reporting import experiments, views

app_name = "reports"

urlpatterns = [
    path("", views.issuances, name="issuances"),
    path("redemption/", views.redemption, name="redemption"),
    path("speed/", views.speed, name="speed"),
    path("cases/", views.cases, name="cases"),
    path("recovery/", views.recovery, name="recovery"),
    path("recovery/appeasements/", views.recovery_list, name="recovery-list"),
    path("return/", views.return_on_appeasement, name="return"),
    path("reps/", views.reps, name="reps"),
    path("reps/<int:user_id>/", views.rep_detail, name="rep"),
    path("anomalies/", views.anomalies_page, name="anomalies"),
    path("issuances/", views.issuance_list, name="list"),
    path("customers/", views.customers, name="customers"),
    path("experiments/", experiments.experiments, name="experiments"),
    path("experiments/<int:experiment_id>/", experiments.experiment, name="experiment"),
]
