"""The roles: Django groups with the permissions each role needs.

Kept in step with the code by `roles_sync`, run after every migrate, so a new model's
permissions reach the roles without a hand-written data migration.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

CSR = "CSR"
SUPERVISOR = "Supervisor"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    CSR: [],
    SUPERVISOR: [
        "coupons.view_offer",
        "coupons.add_offer",
        "coupons.change_offer",
        "coupons.view_code",
        "coupons.view_codebatch",
        "coupons.add_codebatch",
        "coupons.view_codeevent",
        "coupons.view_redemption",
        "coupons.view_merchant",
        "coupons.add_merchant",
        "coupons.change_merchant",
        "coupons.view_merchantapikey",
        "coupons.add_merchantapikey",
        "coupons.change_merchantapikey",
        "appease.view_customer",
        "appease.add_customer",
        "appease.change_customer",
        "appease.view_customerorder",
        "appease.add_customerorder",
        "appease.change_customerorder",
        "appease.view_reasoncode",
        "appease.add_reasoncode",
        "appease.change_reasoncode",
        "appease.view_limitpolicy",
        "appease.add_limitpolicy",
        "appease.change_limitpolicy",
        "appease.view_limitbudget",
        "appease.add_limitbudget",
        "appease.change_limitbudget",
        "appease.delete_limitbudget",
        "appease.view_team",
        "appease.view_staffprofile",
        "appease.change_staffprofile",
        "appease.view_helpdeskintegration",
        "appease.add_helpdeskintegration",
        "appease.change_helpdeskintegration",
        "appease.view_issuance",
        "core.view_auditevent",
        "appease.view_budgetcounter",
        "delivery.view_delivery",
        "delivery.view_deliveryattempt",
        "appease.view_offermessage",
        "appease.add_offermessage",
        "appease.change_offermessage",
        # Feedback: supervisors tune triage, SLAs, recommendations and automatic rules.
        *[
            f"feedback.{action}_{model}"
            for model in (
                "ownerteam",
                "incidentprofile",
                "keywordrule",
                "prioritylevel",
                "feedbacksite",
                "recommendationrule",
                "apologytemplate",
                "autorule",
                "experiment",
            )
            for action in ("view", "add", "change")
        ],
        "feedback.view_case",
        "feedback.view_caseevent",
        "feedback.view_feedback",
        "feedback.view_followup",
        "feedback.view_merchantevent",
        # Outbound webhooks: supervisors register endpoints and send dead ones again.
        "webhooks.view_webhookendpoint",
        "webhooks.add_webhookendpoint",
        "webhooks.change_webhookendpoint",
        "webhooks.delete_webhookendpoint",
        "webhooks.view_webhookdelivery",
    ],
}


def has_role(user, *roles: str) -> bool:
    """An active, logged-in user in one of `roles` (administrators have every role)."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name__in=roles).exists()


def role_emails(role: str) -> list[str]:
    """The email addresses of the active members of `role` (for alerts and escalations)."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(groups__name=role, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )


def roles_sync(**kwargs) -> None:
    for role, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            found = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is not None:
                wanted.append(found)
        group.permissions.set(wanted)
