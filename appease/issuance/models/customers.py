"""Customers, their orders, and the reason codes reps give for an appeasement."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from appease.core.money import default_currency, validate_currency
from appease.delivery.models import Channel

AMOUNT = {"max_digits": 14, "decimal_places": 4}


class IncidentType(models.TextChoices):
    LATE_DELIVERY = "late_delivery", _("Late delivery")
    DAMAGED_ITEM = "damaged_item", _("Damaged item")
    WRONG_ITEM = "wrong_item", _("Wrong item")
    OVERCHARGE = "overcharge", _("Overcharge")
    STAFF_ATTITUDE = "staff_attitude", _("Staff attitude")
    PRODUCT_DEFECT = "product_defect", _("Product defect")
    BILLING = "billing", _("Billing")
    SERVICE_OUTAGE = "service_outage", _("Service outage")
    OTHER = "other", _("Other")


class Customer(models.Model):
    """Someone the business failed, and how to reach them."""

    class Tier(models.TextChoices):
        STANDARD = "standard", _("Standard")
        SILVER = "silver", _("Silver")
        GOLD = "gold", _("Gold")
        PLATINUM = "platinum", _("Platinum")

    external_id = models.CharField(
        _("external id"), max_length=100, null=True, blank=True, unique=True, help_text=_("The shop's customer id.")
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"), blank=True)
    phone = PhoneNumberField(_("phone"), blank=True, help_text=_("International format, e.g. +34 612 345 678."))
    preferred_channel = models.CharField(
        _("preferred channel"),
        max_length=10,
        choices=Channel.choices,
        default=Channel.EMAIL,
        blank=True,
        help_text=_("Empty: we have no way to reach this customer yet (known only by the shop's id)."),
    )
    channel_handle = models.CharField(
        _("chat or social handle"),
        max_length=200,
        blank=True,
        help_text=_("The customer's id on the chat or social channel, e.g. a WhatsApp number or @handle."),
    )
    language = models.CharField(
        _("preferred language"), max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    tier = models.CharField(_("tier"), max_length=10, choices=Tier.choices, default=Tier.STANDARD)
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default=default_currency,
        validators=[validate_currency],
        help_text=_("What the customer pays in: only offers in this currency can be given to them."),
    )
    lifetime_value_amount = models.DecimalField(_("lifetime value"), **AMOUNT, default=Decimal("0"))
    orders_count = models.PositiveIntegerField(_("orders"), default=0)
    total_spend_amount = models.DecimalField(_("total spend"), **AMOUNT, default=Decimal("0"))
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    # Set once the shop's orders reach us (an order.placed event, the orders import):
    # from then on the four figures above are computed from the orders, not typed.
    history_computed_at = models.DateTimeField(
        _("history computed at"),
        null=True,
        blank=True,
        help_text=_(
            "When orders, spend, last order and lifetime value were last computed from the orders; "
            "empty: typed in by staff."
        ),
    )
    consent_email = models.BooleanField(_("may be contacted by email"), default=True)
    consent_sms = models.BooleanField(_("may be contacted by SMS"), default=True)
    consent_chat = models.BooleanField(_("may be contacted by chat"), default=True)
    consent_social = models.BooleanField(_("may be contacted by social message"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    erased_at = models.DateTimeField(
        _("erased"), null=True, blank=True, help_text=_("Personal data removed on request or by the retention rule.")
    )

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        indexes = [
            models.Index(fields=["email"]),
            # Intake finds customers by email in any case (email__iexact: UPPER(email) = UPPER(…)).
            models.Index(Upper("email"), name="customer_email_upper_idx"),
            models.Index(fields=["phone"]),
            models.Index(fields=["name"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(lifetime_value_amount__gte=0), name="customer_ltv_non_negative"),
            models.CheckConstraint(condition=Q(total_spend_amount__gte=0), name="customer_spend_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    def address_for(self, channel: str) -> str:
        """Where a message on `channel` goes; empty when we have no address."""
        if channel == Channel.EMAIL:
            return self.email
        if channel == Channel.SMS:
            return str(self.phone) if self.phone else ""
        if channel in (Channel.CHAT, Channel.SOCIAL):
            return self.channel_handle
        return ""

    def consents_to(self, channel: str) -> bool:
        return bool(getattr(self, f"consent_{channel}", False))

    def reachable_channel(self) -> str | None:
        """The preferred channel if we may and can use it, else the first that works;
        None for a customer we cannot reach (no contact detail, or no consent)."""
        others = [channel for channel in Channel.values if channel != self.preferred_channel]
        for channel in [self.preferred_channel, *others] if self.preferred_channel else others:
            if self.address_for(channel) and self.consents_to(channel):
                return channel
        return None

    def clean(self) -> None:
        # No preferred channel is allowed: a customer the shop names only by its own id
        # is real, just not reachable until someone adds a contact detail.
        if self.preferred_channel and not self.address_for(self.preferred_channel):
            field = {"email": "email", "sms": "phone"}.get(self.preferred_channel, "channel_handle")
            raise ValidationError({field: _("The preferred channel needs this contact detail.")})


class CustomerOrder(models.Model):
    """An order of the customer's. With `placed_at` it is an order the shop told us of
    (an `order.placed` event or the orders import), counted in the customer's history;
    without, only a reference a rep typed so the customer can be found by it."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("Typed by staff")
        EVENT = "event", _("Order event")
        IMPORT = "import", _("Orders import")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders", verbose_name=_("customer"))
    reference = models.CharField(_("order reference"), max_length=100, unique=True)
    total_amount = models.DecimalField(_("total"), **AMOUNT, default=Decimal("0"))
    currency = models.CharField(_("currency"), max_length=3, default=default_currency)
    placed_at = models.DateTimeField(_("placed at"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at"]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="order_total_non_negative"),
        ]

    def __str__(self) -> str:
        return self.reference


class ReasonCode(models.Model):
    """Why a rep appeased: what management sees in every report."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    label = models.CharField(_("label"), max_length=120)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("reason code")
        verbose_name_plural = _("reason codes")
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label
