"""Offer catalog, code inventory, redemptions, merchants and the code ledger.

Invariants are database constraints as well as code: a backstop under the services.
Writes go through `coupons.services`; nothing here writes on its own.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import BaseAPIKeyManager

from appease.core.models.apikeys import SCOPES_HELP, APIKey
from appease.core.money import currency_exponent, fits_currency, is_known_currency
from appease.core.scopes import MERCHANT, merchant_scopes_all, validate_merchant_scopes

AMOUNT = {"max_digits": 14, "decimal_places": 4}


def validate_currency(value: str) -> None:
    if not is_known_currency(value):
        raise ValidationError(_("%(value)s is not an ISO 4217 currency code."), params={"value": value})


class Offer(models.Model):
    """A pre-approved appeasement option a rep may give."""

    class Kind(models.TextChoices):
        PERCENT_OFF = "percent_off", _("Percentage off")
        AMOUNT_OFF = "amount_off", _("Amount off")
        GIFT_CARD = "gift_card", _("Gift card")
        FREE_ITEM = "free_item", _("Free item")
        APOLOGY = "apology", _("Apology (no code)")
        CALLBACK = "callback", _("Callback (no code)")

    SOFT_KINDS = frozenset({Kind.APOLOGY, Kind.CALLBACK})

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    description = models.TextField(
        _("customer-facing description"),
        help_text=_("What the customer reads, e.g. “10% off your next order”."),
    )
    value_amount = models.DecimalField(
        _("face value"),
        **AMOUNT,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Amount off, gift-card balance or the free item's retail price. 0 for soft offers."),
    )
    percent = models.DecimalField(
        _("percent off"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Only for percentage-off offers."),
    )
    max_discount_amount = models.DecimalField(
        _("maximum discount"),
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_("Cap on a percentage-off discount; empty for no cap."),
    )
    currency = models.CharField(
        _("currency"), max_length=3, default=settings.DEFAULT_CURRENCY, validators=[validate_currency]
    )
    cost_amount = models.DecimalField(
        _("cost to the company"),
        **AMOUNT,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    validity_days = models.PositiveIntegerField(_("validity (days)"), default=90)
    min_order_amount = models.DecimalField(
        _("minimum order"), **AMOUNT, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    item_sku = models.CharField(_("free item SKU"), max_length=64, blank=True)
    code_prefix = models.CharField(
        _("code prefix"),
        max_length=8,
        blank=True,
        validators=[RegexValidator(r"^[A-Z0-9]*$", _("Use capital letters and digits only."))],
    )
    generate_on_demand = models.BooleanField(
        _("generate codes on demand"),
        default=False,
        help_text=_("Make a new code at issue time instead of taking one from the inventory."),
    )
    low_inventory_threshold = models.PositiveIntegerField(
        _("low-inventory alert at"),
        default=50,
        help_text=_("Supervisors get an email when this few codes are left. 0: never."),
    )
    low_inventory_alerted_at = models.DateTimeField(
        _("low inventory alerted at"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(value_amount__gte=0), name="offer_value_non_negative"),
            models.CheckConstraint(condition=Q(cost_amount__gte=0), name="offer_cost_non_negative"),
            models.CheckConstraint(condition=Q(min_order_amount__gte=0), name="offer_min_order_non_negative"),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | (Q(percent__gt=0) & Q(percent__lte=100)),
                name="offer_percent_in_range",
            ),
            models.CheckConstraint(condition=Q(validity_days__gt=0), name="offer_validity_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_soft(self) -> bool:
        return self.kind in self.SOFT_KINDS

    def usable_by(self, customer) -> bool:
        """A customer can be given offers in their own currency, and soft offers
        (an apology, a callback: no code, no money they see) whatever they pay in."""
        return self.is_soft or self.currency == customer.currency

    @classmethod
    def usable_in(cls, currency: str) -> Q:
        """`usable_by` as a filter, for a customer paying in `currency`."""
        return Q(currency=currency) | Q(kind__in=cls.SOFT_KINDS)

    @property
    def has_balance(self) -> bool:
        return self.kind == self.Kind.GIFT_CARD

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.currency and is_known_currency(self.currency):
            for field in ("value_amount", "cost_amount", "min_order_amount", "max_discount_amount"):
                amount = getattr(self, field)
                if amount is not None and not fits_currency(amount, self.currency):
                    errors[field] = _("%(currency)s has %(places)s decimal places.") % {
                        "currency": self.currency,
                        "places": currency_exponent(self.currency),
                    }
        if self.kind == self.Kind.PERCENT_OFF:
            if self.percent is None:
                errors["percent"] = _("A percentage-off offer needs a percentage.")
        elif self.percent is not None:
            errors["percent"] = _("Only percentage-off offers have a percentage.")
        needs_value = self.kind in (self.Kind.AMOUNT_OFF, self.Kind.GIFT_CARD, self.Kind.FREE_ITEM)
        if needs_value and (not self.value_amount or self.value_amount <= 0):
            errors["value_amount"] = _("This kind of offer needs a face value above zero.")
        if self.kind in self.SOFT_KINDS and self.value_amount:
            errors["value_amount"] = _("Soft offers carry no code and no face value.")
        if self.kind == self.Kind.FREE_ITEM and not self.item_sku:
            errors["item_sku"] = _("Name the free item's SKU.")
        if errors:
            raise ValidationError(errors)


class Merchant(models.Model):
    """A shop whose checkout calls the redemption API. An API client, not a user."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MerchantAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().filter(merchant__is_active=True).select_related("merchant")


class MerchantAPIKey(APIKey):
    """`Authorization: Api-Key <prefix>.<secret>`; only a SHA-512 hash is stored."""

    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("merchant")
    )
    scopes = models.JSONField(
        _("scopes"),
        default=merchant_scopes_all,
        blank=True,
        validators=[validate_merchant_scopes],
        help_text=SCOPES_HELP,
    )
    scope_kind = MERCHANT

    objects = MerchantAPIKeyManager()

    class Meta(APIKey.Meta):
        verbose_name = _("merchant API key")
        verbose_name_plural = _("merchant API keys")


class CodeBatch(models.Model):
    """One generation or import of codes for an offer; the unit of all-or-nothing."""

    class Source(models.TextChoices):
        GENERATED = "generated", _("Generated")
        IMPORTED = "imported", _("Imported")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="batches", verbose_name=_("offer"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    filename = models.CharField(_("filename"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("code batch")
        verbose_name_plural = _("code batches")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.offer} · {self.get_source_display()} · {self.quantity}"


class Code(models.Model):
    """A single-use coupon or a gift card. Never stored in plaintext."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        ISSUED = "issued", _("Issued")
        REDEEMED = "redeemed", _("Redeemed")
        VOIDED = "voided", _("Voided")
        EXPIRED = "expired", _("Expired")

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="codes", verbose_name=_("offer"))
    batch = models.ForeignKey(
        CodeBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="codes", verbose_name=_("batch")
    )
    lookup_hash = models.BinaryField(_("lookup hash"), max_length=32, unique=True, editable=False)
    ciphertext = models.TextField(_("ciphertext"), editable=False)
    last4 = models.CharField(_("last four"), max_length=4)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    currency = models.CharField(_("currency"), max_length=3)
    initial_balance_amount = models.DecimalField(_("initial balance"), **AMOUNT, null=True, blank=True)
    balance_amount = models.DecimalField(_("balance"), **AMOUNT, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("code")
        verbose_name_plural = _("codes")
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_amount__isnull=True) | Q(balance_amount__gte=0),
                name="code_balance_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(balance_amount__isnull=True)
                | Q(initial_balance_amount__isnull=False, balance_amount__lte=models.F("initial_balance_amount")),
                name="code_balance_at_most_initial",
            ),
        ]
        indexes = [
            # Claiming from the inventory: the oldest available code of an offer.
            models.Index(fields=["offer", "id"], name="code_available_idx", condition=Q(status="available")),
            # The expiry sweep.
            models.Index(fields=["expires_at"], name="code_issued_expiry_idx", condition=Q(status="issued")),
        ]

    def __str__(self) -> str:
        return f"••••-{self.last4}"


class Redemption(models.Model):
    """A checkout took value from a code. Reversed when the order is cancelled."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVERSED = "reversed", _("Reversed")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    code = models.ForeignKey(Code, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("code"))
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("merchant")
    )
    order_id = models.CharField(_("order ID"), max_length=100)
    order_total_amount = models.DecimalField(_("order total"), **AMOUNT)
    discount_amount = models.DecimalField(_("discount"), **AMOUNT)
    currency = models.CharField(_("currency"), max_length=3)
    balance_after_amount = models.DecimalField(_("balance after"), **AMOUNT, null=True, blank=True)
    single_use = models.BooleanField(_("single use"), help_text=_("A coupon (one active redemption), not a gift card."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    redeemed_at = models.DateTimeField(_("redeemed at"))
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    reverse_reason = models.CharField(_("reverse reason"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-redeemed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(status="active", single_use=True),
                name="one_active_redemption_per_coupon",
            ),
            models.CheckConstraint(condition=Q(discount_amount__gt=0), name="redemption_discount_positive"),
            models.CheckConstraint(condition=Q(order_total_amount__gt=0), name="redemption_total_positive"),
        ]
        indexes = [
            models.Index(fields=["merchant", "order_id"]),
            # Redemptions and reversals since the last rollup refresh (reporting.services).
            models.Index(fields=["redeemed_at"], name="redemption_redeemed_idx"),
            models.Index(
                fields=["reversed_at"], name="redemption_reversed_idx", condition=Q(reversed_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.discount_amount} {self.currency} on {self.order_id}"


class CodeEvent(models.Model):
    """The append-only ledger: every transition of a code and every balance change.

    Written only by `coupons.events`, in the transaction of the change it records.
    Never updated or deleted; on PostgreSQL a trigger refuses both.
    """

    class Kind(models.TextChoices):
        ISSUED = "issued", _("Issued")
        REDEEMED = "redeemed", _("Redeemed")
        REDEMPTION_REVERSED = "redemption_reversed", _("Redemption reversed")
        VOIDED = "voided", _("Voided")
        EXPIRED = "expired", _("Expired")

    code = models.ForeignKey(Code, on_delete=models.PROTECT, related_name="events", verbose_name=_("code"))
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    from_status = models.CharField(_("from status"), max_length=10, choices=Code.Status.choices)
    to_status = models.CharField(_("to status"), max_length=10, choices=Code.Status.choices)
    amount = models.DecimalField(_("amount"), **AMOUNT, null=True, blank=True, help_text=_("Balance change (signed)."))
    balance_after_amount = models.DecimalField(_("balance after"), **AMOUNT, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("actor user"),
    )
    actor_merchant = models.ForeignKey(
        Merchant, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("actor merchant")
    )
    redemption = models.ForeignKey(
        Redemption, null=True, blank=True, on_delete=models.PROTECT, related_name="events", verbose_name=_("redemption")
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("code ledger entry")
        verbose_name_plural = _("code ledger")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["code", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ••••-{self.code.last4}"

    @property
    def actor_label(self) -> str:
        if self.actor_merchant_id:
            return f"merchant:{self.actor_merchant}"
        if self.actor_user_id:
            return f"user:{self.actor_user}"
        return "system"
