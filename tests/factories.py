"""Test data, made through the real services where practical."""

from __future__ import annotations

import itertools
from decimal import Decimal

from django.db import transaction

from coupons.models import Merchant, MerchantAPIKey, Offer
from coupons.services.inventory import IssuedCode, code_issue

_seq = itertools.count(1)


def offer_create(**fields) -> Offer:
    n = next(_seq)
    defaults = {
        "name": f"Offer {n}",
        "kind": Offer.Kind.AMOUNT_OFF,
        "description": "5 off your next order",
        "value_amount": Decimal("5.00"),
        "currency": "USD",
        "cost_amount": Decimal("3.00"),
        "validity_days": 30,
        "generate_on_demand": True,
    }
    defaults.update(fields)
    offer = Offer(**defaults)
    offer.full_clean()
    offer.save()
    return offer


def gift_card_offer_create(**fields) -> Offer:
    return offer_create(
        **{"kind": Offer.Kind.GIFT_CARD, "value_amount": Decimal("50.00"), "description": "A 50 gift card", **fields}
    )


def issued_code(offer: Offer | None = None, **offer_fields) -> IssuedCode:
    offer = offer or offer_create(**offer_fields)
    with transaction.atomic():
        return code_issue(offer=offer)


def merchant_with_key(name: str | None = None) -> tuple[Merchant, str]:
    merchant = Merchant.objects.create(name=name or f"Shop {next(_seq)}")
    _api_key, key = MerchantAPIKey.objects.create_key(name="checkout", merchant=merchant)
    return merchant, key


# --- The issuance domain ----------------------------------------------------------------


def staff_user(role: str = "CSR", *, username: str | None = None, team=None, policy=None):
    from django.contrib.auth.models import Group, User

    from appease.issuance.models import StaffProfile

    user = User.objects.create_user(
        username=username or f"{role.lower()}{next(_seq)}", password="pw", email=f"u{next(_seq)}@example.com"
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    if role == "Supervisor":
        user.is_staff = True
        user.save()
    StaffProfile.objects.create(user=user, team=team, policy=policy)
    return user


def policy_create(*, currency: str = "USD", over_limit: str = "approval", max_per_customer=None, **budget):
    from appease.issuance.models import LimitBudget, LimitPolicy

    policy = LimitPolicy.objects.create(
        name=f"Policy {next(_seq)}", over_limit=over_limit, max_issuances_per_customer=max_per_customer
    )
    LimitBudget.objects.create(policy=policy, currency=currency, **budget)
    return policy


def customer_create(**fields):
    from appease.issuance.models import Customer

    n = next(_seq)
    defaults = {"name": f"Customer {n}", "email": f"customer{n}@example.com", "preferred_channel": "email"}
    defaults.update(fields)
    customer = Customer(**defaults)
    customer.full_clean()
    customer.save()
    return customer


def reason_create(code: str | None = None, incident_type: str = "late_delivery"):
    from appease.issuance.models import ReasonCode

    n = next(_seq)
    return ReasonCode.objects.create(code=code or f"reason-{n}", label=f"Reason {n}", incident_type=incident_type)


def helpdesk_integration_create(*, origins: str = "https://example.zendesk.com", **fields):
    from appease.issuance.models import HelpdeskIntegration

    n = next(_seq)
    fields = {"name": f"Zendesk {n}", "kind": "zendesk", "key_id": f"zendesk-{n}", **fields}
    return HelpdeskIntegration.objects.create(frame_ancestors=origins, **fields)


def launch_token(integration, *, sub: str, secret: str | None = None, headers: dict | None = None, **claims) -> str:
    """A launch token as the helpdesk's signer makes one (HS256, the shared secret);
    `claims` override or add (None removes one)."""
    import time
    import uuid

    import jwt
    from django.conf import settings

    now = int(time.time())
    payload = {
        "iss": integration.key_id,
        "sub": sub,
        "aud": settings.SIDEBAR_LAUNCH_AUDIENCE,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "customer": {"email": "lucia@example.com"},
        "ticket": {"id": "4711", "language": "en"},
        **claims,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, secret or integration.secret, algorithm="HS256", headers=headers)
