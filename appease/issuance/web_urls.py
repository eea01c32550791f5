from django.urls import path

from appease.issuance import sidebar, views

app_name = "csr"

urlpatterns = [
    path("", views.home, name="home"),
    path("customers/new/", views.customer_new, name="customer-new"),
    path("customers/<int:customer_id>/", views.customer_panel, name="customer"),
    path("customers/<int:customer_id>/issue/", views.issue, name="issue"),
    path("customers/<int:customer_id>/currency/", views.customer_currency, name="customer-currency"),
    path("issuances/<uuid:issuance_id>/", views.issuance_detail, name="issuance"),
    path("issuances/<uuid:issuance_id>/resend/", views.resend, name="resend"),
    path("issuances/<uuid:issuance_id>/reveal/", views.reveal, name="reveal"),
    path("budget/", views.budget, name="budget"),
    path("approvals/", views.approvals, name="approvals"),
    path("sidebar/launch", sidebar.sidebar_launch, name="sidebar-launch"),
    path("sidebar/", sidebar.sidebar_page, name="sidebar"),
    path("approvals/<uuid:issuance_id>/<str:decision>/", views.approval_decide, name="approval-decide"),
]
