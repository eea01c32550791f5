"""Load the demo: people, offers with codes, a merchant key and a few issued codes.

Safe to run again: existing rows are kept and the merchant key is the same on every run
(derived from SECRET_KEY; stored hashed like any other key, printed each time).
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from appease.core.context import Actor
from appease.core.models import StaffAPIKey
from appease.core.roles import CSR, SUPERVISOR
from appease.issuance.models import Customer, CustomerOrder, LimitBudget, LimitPolicy, ReasonCode, StaffProfile, Team
from appease.issuance.services.issuance import issuance_create
from coupons import codes
from coupons.models import Code, CodeEvent, Merchant, MerchantAPIKey, Offer
from coupons.services.inventory import code_batch_generate, code_batch_request, code_issue
from feedback.models import ApologyTemplate, AutoRule, Case, FeedbackSite
from feedback.services.intake import feedback_submit
from reporting.services import rollups_refresh

DEMO_PASSWORD = "appease-demo"  # noqa: S105  (printed on screen; the demo refuses to run with DEBUG off)
CODES_PER_OFFER = 200
# The history behind the reports, made on the first load (generate_history): ~4,000
# appeasements to ~1,300 customers (three each: enough apart that ordering again after
# one shows), ~1,300 cases, every appeasement's outcome and follow-up, the customers'
# orders and a running experiment over four months, by a dozen reps besides the demo's
# own, so every report and the recommendations' evidence have real figures on first start.
SAMPLE_REASON = "demo sample for the API walkthrough"
HISTORY_ISSUANCES = 4000
HISTORY_DAYS = 120
HISTORY_REPS = 12
HISTORY_SITE = "History web shop"  # generate_history's feedback site: there once the history is


def demo_key(purpose: str) -> str:
    """A demo API key, `<prefix>.<secret>`: a keyed hash of SECRET_KEY, so it is the same
    on every load of the same demo and never one a real deployment uses."""
    digest = salted_hmac("appease.demo.api-key", purpose, algorithm="sha256").hexdigest()
    return f"{digest[:8]}.{digest[8:40]}"


def demo_merchant_key() -> str:
    return demo_key("merchant:Demo Shop")


def demo_staff_token() -> str:
    return demo_key(f"staff:{STAFF_TOKEN_USER}")


STAFF_TOKEN_USER = "ana"  # noqa: S105  (a username: the README's issuance API example acts as her)
ADMIN = ("admin", "Alex", "Admin")  # the demo's administrator: users, staff API keys, everything


PEOPLE = [
    # username, first name, last name, role, language, time zone ("": the browser's / TIME_ZONE)
    ("supervisor", "Sofía", "Martínez", SUPERVISOR, "es", "Europe/Madrid"),
    ("ana", "Ana", "García", CSR, "es", "Europe/Madrid"),
    ("bruno", "Bruno", "Souza", CSR, "pt-br", "America/Sao_Paulo"),
    ("carla", "Carla", "Lima", CSR, "", ""),
]

OFFERS = [
    {
        "name": "Sorry: 10% off",
        "kind": Offer.Kind.PERCENT_OFF,
        "percent": Decimal("10"),
        "max_discount_amount": Decimal("20.00"),
        "cost_amount": Decimal("2.00"),
        "code_prefix": "SORRY",
        "description_en": "10% off your next order (up to $20)",
        "description_es": "10 % de descuento en tu próximo pedido (hasta 20 $)",
        "description_pt_br": "10% de desconto no seu próximo pedido (até US$ 20)",
    },
    {
        "name": "$5 off next order",
        "kind": Offer.Kind.AMOUNT_OFF,
        "value_amount": Decimal("5.00"),
        "cost_amount": Decimal("3.50"),
        "min_order_amount": Decimal("20.00"),
        "description_en": "$5 off your next order of $20 or more",
        "description_es": "5 $ de descuento en tu próximo pedido desde 20 $",
        "description_pt_br": "US$ 5 de desconto no seu próximo pedido a partir de US$ 20",
    },
    {
        "name": "$25 gift card",
        "kind": Offer.Kind.GIFT_CARD,
        "value_amount": Decimal("25.00"),
        "cost_amount": Decimal("18.00"),
        "validity_days": 365,
        "description_en": "A $25 gift card, spend it across as many orders as you like",
        "description_es": "Una tarjeta regalo de 25 $, para gastar en los pedidos que quieras",
        "description_pt_br": "Um vale-presente de US$ 25 para usar em quantos pedidos quiser",
    },
    {
        "name": "Free dessert",
        "kind": Offer.Kind.FREE_ITEM,
        "value_amount": Decimal("6.50"),
        "cost_amount": Decimal("1.80"),
        "item_sku": "DESSERT-01",
        "validity_days": 30,
        "description_en": "A free dessert with your next order",
        "description_es": "Un postre gratis con tu próximo pedido",
        "description_pt_br": "Uma sobremesa grátis no seu próximo pedido",
    },
    {
        "name": "R$ 30 de desconto",
        "kind": Offer.Kind.AMOUNT_OFF,
        "value_amount": Decimal("30.00"),
        "currency": "BRL",
        "cost_amount": Decimal("20.00"),
        "description_en": "R$ 30 off your next order",
        "description_es": "30 R$ de descuento en tu próximo pedido",
        "description_pt_br": "R$ 30 de desconto no seu próximo pedido",
    },
    {
        "name": "5 € de descuento",
        "kind": Offer.Kind.AMOUNT_OFF,
        "value_amount": Decimal("5.00"),
        "currency": "EUR",
        "cost_amount": Decimal("3.50"),
        "min_order_amount": Decimal("20.00"),
        "description_en": "€5 off your next order of €20 or more",
        "description_es": "5 € de descuento en tu próximo pedido desde 20 €",
        "description_pt_br": "5 € de desconto no seu próximo pedido a partir de 20 €",
    },
    {
        "name": "Sincere apology",
        "kind": Offer.Kind.APOLOGY,
        "description_en": "Our sincere apology",
        "description_es": "Nuestras sinceras disculpas",
        "description_pt_br": "Nossas sinceras desculpas",
    },
    {
        "name": "Callback from a supervisor",
        "kind": Offer.Kind.CALLBACK,
        "description_en": "A supervisor will call you back",
        "description_es": "Un supervisor te devolverá la llamada",
        "description_pt_br": "Um supervisor retornará sua ligação",
    },
]


REASONS = [
    ("late-delivery", "late_delivery", "Late delivery", "Entrega con retraso", "Entrega atrasada"),
    ("damaged-item", "damaged_item", "Item arrived damaged", "Artículo dañado", "Item danificado"),
    ("wrong-item", "wrong_item", "Wrong item sent", "Artículo equivocado", "Item errado"),
    ("double-charge", "overcharge", "Charged twice", "Cobro duplicado", "Cobrança em dobro"),
    ("rude-staff", "staff_attitude", "Rude staff", "Trato descortés", "Atendimento grosseiro"),
    ("defect", "product_defect", "Product defect", "Producto defectuoso", "Produto com defeito"),
    ("outage", "service_outage", "Service outage", "Caída del servicio", "Serviço fora do ar"),
]

APOLOGIES = [
    (
        "Sincere apology",
        "en",
        "{first_name}, we are truly sorry. You deserved better from us, and we are putting it right.",
    ),
    (
        "Disculpa sincera",
        "es",
        "{first_name}, lo sentimos de verdad. Merecías algo mejor de nosotros y ya lo estamos resolviendo.",
    ),
    (
        "Desculpa sincera",
        "pt-br",
        "{first_name}, sentimos muito. Você merecia mais de nós, e já estamos resolvendo.",
    ),
]

SAMPLE_FEEDBACK = [
    # customer email, rating, text, language
    ("emily.carter@example.com", 1, "The courier was rude and hung up on me. Unacceptable!", "en"),
    ("emily.carter@example.com", 2, "My order is late again, still waiting after a week.", "en"),
    ("lucia.fernandez@example.es", 1, "Me cobraron de más en la factura. ¡Es inaceptable!", "es"),
    ("joao.pereira@example.com.br", 2, "Meu pedido chegou quebrado, que vergonha.", "pt-br"),
]

CUSTOMERS = [
    # name, email, phone, channel, handle, language, tier, currency, ltv, orders, order ref
    (
        "Emily Carter",
        "emily.carter@example.com",
        "+14155550142",
        "email",
        "",
        "en",
        "gold",
        "USD",
        "2450.00",
        31,
        "US-10021",
    ),
    (
        "Lucía Fernández",
        "lucia.fernandez@example.es",
        "+34612345678",
        "sms",
        "",
        "es",
        "silver",
        "EUR",
        "820.00",
        9,
        "ES-20417",
    ),
    (
        "Javier Morales",
        "javier.morales@example.mx",
        "+5215512345678",
        "chat",
        "+5215512345678",
        "es",
        "standard",
        "USD",
        "140.00",
        2,
        "MX-30991",
    ),
    (
        "João Pereira",
        "joao.pereira@example.com.br",
        "+5511987654321",
        "social",
        "@joaopereira",
        "pt-br",
        "platinum",
        "BRL",
        "15300.00",
        64,
        "BR-40233",
    ),
    (
        "Mariana Costa",
        "mariana.costa@example.com.br",
        "+5521998765432",
        "email",
        "",
        "pt-br",
        "standard",
        "BRL",
        "310.00",
        4,
        "BR-40877",
    ),
]


class Command(BaseCommand):
    help = _(
        "Load demo data: a supervisor, three CSRs, limit policies, reason codes, customers, offers with codes and "
        "a merchant API key."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--history",
            type=int,
            default=HISTORY_ISSUANCES,
            help=_(
                "Appeasements in the generated history behind the reports (default %(default)d; 0: none). "
                "Made on the first load only."
            ),
        )

    def handle(self, *args, history: int = HISTORY_ISSUANCES, **options):
        if not settings.DEBUG:
            raise CommandError(_("The demo data has public passwords: it loads only with DEBUG on."))
        with transaction.atomic():
            offers = [self._offer(spec) for spec in OFFERS]
            self._policies(offers)
            people = self._people()
            self._reasons()
            self._customers()
            self._admin()
            _merchant, key = self._merchant_key()
            token = self._staff_token()
            site = self._feedback(offers, people)
        for offer in offers:
            self._stock(offer)
        samples = self._samples(offers, people["supervisor"])
        self._appeasements(offers, people)
        self._history(history)
        self._report(key, token, samples)
        self.stdout.write("")
        self.stdout.write(
            _("Feedback widget on a demo shop page: %(url)s") % {"url": f"{settings.PUBLIC_URL}/demo/shop/"}
        )
        self.stdout.write(f"  site key {site.public_key}")

    def _policies(self, offers: list[Offer]) -> None:
        """Reps: 60 USD / 55 EUR / 300 BRL of cost a day, to a supervisor above; at most 3 per
        customer a month. Supervisors: ten times that, refused above."""
        for group_name, factor, over_limit in ((CSR, 1, "approval"), (SUPERVISOR, 10, "refuse")):
            group = Group.objects.get(name=group_name)
            policy, _created = LimitPolicy.objects.get_or_create(
                name=f"{group_name} default",
                defaults={"group": group, "over_limit": over_limit, "max_issuances_per_customer": 3 * factor},
            )
            for currency, day in (("USD", Decimal("60")), ("EUR", Decimal("55")), ("BRL", Decimal("300"))):
                LimitBudget.objects.get_or_create(  # a currency added since an earlier load gets its budget
                    policy=policy,
                    currency=currency,
                    defaults={
                        "max_face_per_issuance_amount": day * factor / 2,
                        "day_cost_amount": day * factor,
                        "week_cost_amount": day * factor * 4,
                        "month_cost_amount": day * factor * 12,
                    },
                )

    def _reasons(self) -> None:
        for code, incident, en, es, pt in REASONS:
            ReasonCode.objects.get_or_create(
                code=code,
                defaults={"incident_type": incident, "label_en": en, "label_es": es, "label_pt_br": pt},
            )

    def _customers(self) -> None:
        """The named customers, each with the orders behind their figures: `orders` of
        them over the last two years adding up to their lifetime value, the last one the
        order reference they quote."""
        now = timezone.now().replace(microsecond=0)
        for name, email, phone, channel, handle, language, tier, currency, ltv, orders, ref in CUSTOMERS:
            customer, created = Customer.objects.get_or_create(
                email=email,
                defaults={
                    "name": name,
                    "phone": phone,
                    "preferred_channel": channel,
                    "channel_handle": handle,
                    "language": language,
                    "tier": tier,
                    "currency": currency,
                    "lifetime_value_amount": Decimal(ltv),
                    "total_spend_amount": Decimal(ltv),
                    "orders_count": orders,
                },
            )
            if created:
                total = Decimal(ltv)
                each = (total / orders).quantize(Decimal("0.01"))
                placed = [now - timedelta(days=3 + 730 * (orders - 1 - n) // orders) for n in range(orders)]
                CustomerOrder.objects.bulk_create(
                    CustomerOrder(
                        customer=customer,
                        reference=ref if n == orders - 1 else f"{ref}-{n + 1:02d}",
                        total_amount=each if n < orders - 1 else total - each * (orders - 1),
                        currency=currency,
                        placed_at=at,
                    )
                    for n, at in enumerate(placed)
                )
                Customer.objects.filter(pk=customer.pk).update(last_order_at=placed[-1])

    def _people(self):
        user_model = get_user_model()
        people = {}
        for username, first, last, role, language, time_zone in PEOPLE:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@demo.appease.local"},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
            user.is_staff = role == SUPERVISOR
            user.save()
            user.groups.add(Group.objects.get(name=role))
            team, _created = Team.objects.get_or_create(name="Front line")
            profile, _created = StaffProfile.objects.get_or_create(
                user=user, defaults={"team": team, "language": language, "time_zone": time_zone}
            )
            if not profile.language and not profile.time_zone and (language or time_zone):
                # a demo loaded before reps had languages: give them theirs
                StaffProfile.objects.filter(pk=profile.pk).update(language=language, time_zone=time_zone)
            people[username] = user
        return people

    def _offer(self, spec: dict) -> Offer:
        fields = {"currency": "USD", "validity_days": 90, **spec}
        offer = Offer.objects.filter(name=fields["name"]).first()
        if offer is None:
            offer = Offer(**fields)
            offer.full_clean()
            offer.save()
        return offer

    def _feedback(self, offers: list[Offer], people) -> FeedbackSite:
        """A feedback site for the demo shop, apology templates, an automatic rule
        (a delivery three hours late earns $5 off) and a few cases in the queue."""
        site = FeedbackSite.objects.filter(name="Casa Verde demo shop").first()
        if site is None:
            site = FeedbackSite.objects.create(name="Casa Verde demo shop", default_language="en")
        for name, language, text in APOLOGIES:
            ApologyTemplate.objects.get_or_create(name=name, language=language, defaults={"text": text})
        by_name = {offer.name: offer for offer in offers}
        AutoRule.objects.get_or_create(
            name="Delivery 3 h late: $5 off",
            defaults={
                "event_type": "delivery_delayed",
                "condition_field": "delay_minutes",
                "condition_operator": ">=",
                "condition_value": "180",
                "offer": by_name["$5 off next order"],
                "reason_code": ReasonCode.objects.get(code="late-delivery"),
                "budget_amount": Decimal("500"),
                "per_customer_cap": 1,
            },
        )
        if not Case.objects.exists():
            for email, rating, text, language in SAMPLE_FEEDBACK:
                customer = Customer.objects.filter(email=email).first()
                feedback_submit(
                    actor=Actor(user=people["supervisor"]),
                    source=Case.Source.API,
                    site=site,
                    customer=customer,
                    rating=rating,
                    text=text,
                    language=language,
                )
        return site

    def _merchant_key(self):
        """The same key on every load, so a key exported after one `make demo` still works
        after the next (and after a fresh database)."""
        merchant, _created = Merchant.objects.get_or_create(name="Demo Shop")
        key = demo_merchant_key()
        self._stable_key(MerchantAPIKey, key=key, name="demo checkout", merchant=merchant)
        return merchant, key

    def _staff_token(self) -> str:
        token = demo_staff_token()
        user = get_user_model().objects.get(username=STAFF_TOKEN_USER)
        self._stable_key(StaffAPIKey, key=token, name="demo CRM", user=user)
        return token

    @staticmethod
    def _stable_key(model, *, key: str, name: str, **owner) -> None:
        """`key` usable under `name` for `owner`; an earlier demo's random key of that name
        is revoked. Stored hashed like any other key."""
        prefix = key.partition(".")[0]
        hashed = model.objects.key_generator.hash(key)
        model.objects.filter(name=name, **owner).exclude(prefix=prefix).update(revoked=True)
        current = model.objects.filter(prefix=prefix).first()
        if current is not None and (
            current.revoked
            or any(getattr(current, field) != value for field, value in owner.items())
            or not current.is_valid(key)
        ):
            # Revoked in the admin (or another database's row): revocation is final for a
            # row, so the demo's key comes back as a new one.
            current.delete()
            current = None
        if current is None:
            model.objects.create(id=f"{prefix}.{hashed}", prefix=prefix, hashed_key=hashed, name=name, **owner)

    def _admin(self) -> None:
        username, first, last = ADMIN
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@demo.appease.local"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
        user.is_staff = user.is_superuser = True
        user.save()

    def _stock(self, offer: Offer) -> None:
        if offer.is_soft:
            return
        missing = CODES_PER_OFFER - offer.codes.filter(status=Code.Status.AVAILABLE).count()
        if missing > CODES_PER_OFFER // 4:  # topped up when a quarter is gone, not on every load
            batch = code_batch_request(offer=offer, quantity=missing)
            code_batch_generate(batch_id=batch.pk)

    def _samples(self, offers: list[Offer], supervisor) -> list[tuple[Offer, str]]:
        """One issued code per code offer for the checkout walkthrough: the one an earlier
        load issued while it is still unused, else a new one (the README redeems it)."""
        samples = []
        for offer in offers:
            if offer.is_soft:
                continue
            unused = (
                Code.objects.filter(
                    offer=offer,
                    status=Code.Status.ISSUED,
                    expires_at__gt=timezone.now(),
                    events__kind=CodeEvent.Kind.ISSUED,
                    events__reason=SAMPLE_REASON,
                )
                .order_by("-issued_at", "-pk")
                .first()
            )
            if unused is not None:
                samples.append((offer, codes.decrypt(unused.ciphertext)))
                continue
            with transaction.atomic():
                issued = code_issue(offer=offer, actor=supervisor, reason=SAMPLE_REASON)
            samples.append((offer, issued.plaintext))
        return samples

    def _appeasements(self, offers: list[Offer], people) -> None:
        """Each rep gives one appeasement to a customer of their language, in the
        customer's currency: the outbox sends each message in the customer's language
        (the Spanish one in euros, the Portuguese one in reais)."""
        by_name = {offer.name: offer for offer in offers}
        for username, email, offer_name, reason in (
            ("ana", "lucia.fernandez@example.es", "5 € de descuento", "late-delivery"),
            ("bruno", "joao.pereira@example.com.br", "R$ 30 de desconto", "damaged-item"),
            ("carla", "emily.carter@example.com", "$5 off next order", "wrong-item"),
        ):
            customer = Customer.objects.get(email=email)
            if customer.issuances.exists():
                continue
            issuance_create(
                actor=Actor(user=people[username]),
                customer=customer,
                offer=by_name[offer_name],
                reason_code=ReasonCode.objects.get(code=reason),
            )

    def _history(self, issuances: int) -> None:
        """A past for the reports: HISTORY_DAYS days of appeasements, cases, answered and
        unanswered follow-ups and redemptions (generate_history), made once; then the
        rollups, which the reports read, brought up to date (beat does it from then on)."""
        if issuances > 0 and not FeedbackSite.objects.filter(name=HISTORY_SITE).exists():
            started = time.perf_counter()
            call_command(
                "generate_history",
                issuances=issuances,
                reps=HISTORY_REPS,
                customers=max(50, issuances // 3),
                days=HISTORY_DAYS,
                seed=1,
                yes=True,
                stdout=StringIO(),
            )
            self.stdout.write(
                _("History for the reports: %(issuances)d appeasements over %(days)d days, made in %(seconds).1f s.")
                % {"issuances": issuances, "days": HISTORY_DAYS, "seconds": time.perf_counter() - started}
            )
        else:
            rollups_refresh()

    def _report(self, key: str, token: str, samples: list[tuple[Offer, str]]) -> None:
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(_("Demo data loaded.")))
        out.write(_("Logins (password “%(password)s”):") % {"password": DEMO_PASSWORD})
        for username, first, last, role, language, time_zone in PEOPLE:
            speaks = f", {language} {time_zone}".rstrip() if language else ""
            out.write(f"  {username:<11} {first} {last} ({role}{speaks})")
        out.write(f"  {ADMIN[0]:<11} {ADMIN[1]} {ADMIN[2]} ({_('administrator: users, staff API keys, everything')})")
        out.write("")
        out.write(_("Merchant API key for “Demo Shop” (the same on every load of this demo):"))
        out.write(f"  export APPEASE_KEY='{key}'")
        out.write(
            _("Staff API token of %(user)s (the issuance API; the same on every load):") % {"user": STAFF_TOKEN_USER}
        )
        out.write(f"  export STAFF_TOKEN='{token}'")
        out.write("")
        out.write(_("Issued codes to try the checkout API with:"))
        for offer, plaintext in samples:
            out.write(f"  {plaintext:<28} {offer.name} ({offer.currency})")
        by_name = {offer.name: plaintext for offer, plaintext in samples}
        out.write(_("The README's examples use two of them:"))
        out.write(f"  export COUPON='{by_name['$5 off next order']}' GIFT_CARD='{by_name['$25 gift card']}'")
