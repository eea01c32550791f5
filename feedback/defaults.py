"""The starting configuration supervisors then edit in the admin: priority bands and
their targets, incident weights and owning teams, keyword rules in three languages,
and recommendation rules after the sources (respect and an apology for staff attitude,
compensation for overcharges).

Loaded by migration 0002, and again after a flush (tests, a wiped database) through
post_migrate: whenever there is no priority band at all, since without bands no
feedback would ever become a case.
"""

from datetime import datetime, time
from decimal import Decimal

from django.conf import settings

HOUR = 3600


def business_day_seconds() -> int:
    """One business day: the configured opening hours of one day (09:00–18:00 by
    default: 9 hours, 32,400 s). A clock on business hours counts only these, so "1
    business day" is this many business seconds, not 24 hours' worth (which would be
    2⅔ business days)."""
    opens, closes = (time.fromisoformat(value) for value in settings.FEEDBACK_BUSINESS_HOURS)
    seconds = int((datetime.combine(datetime.min, closes) - datetime.combine(datetime.min, opens)).total_seconds())
    return seconds if seconds > 0 else 24 * HOUR  # no opening hours: the clock runs around the clock


def priority_levels() -> list[tuple]:
    """The starting bands (docs/feedback.md, "Triage and priority"), with the business
    day of the hours configured when they are created."""
    day = business_day_seconds()
    return [
        # priority, min score, creates a case, first response (s), resolution (s), business hours only
        ("critical", 70, True, 60, 4 * HOUR, False),  # 60 seconds; 4 hours, around the clock
        ("high", 45, True, 15 * 60, day, True),  # 15 business minutes; 1 business day
        ("normal", 25, True, 4 * HOUR, 3 * day, True),  # 4 business hours; 3 business days
        ("low", 0, False, day, 5 * day, True),  # no case by default; 1 and 5 business days
    ]


TEAMS = ["Logistics", "Billing", "Product", "Customer service", "Operations"]

INCIDENTS = {
    # incident type: (impact weight, owning team)
    "late_delivery": (20, "Logistics"),
    "damaged_item": (25, "Logistics"),
    "wrong_item": (25, "Logistics"),
    "overcharge": (35, "Billing"),
    "billing": (30, "Billing"),
    "staff_attitude": (30, "Customer service"),
    "product_defect": (25, "Product"),
    "service_outage": (40, "Operations"),
    "other": (10, None),
}

KEYWORDS = {
    "en": {
        "late_delivery": "late\nnot arrived\nhasn't arrived\nstill waiting\ndelayed\ndelay\nwhere is my order",
        "damaged_item": "damaged\nbroken\ncrushed\nsmashed\ncracked",
        "wrong_item": "wrong item\nwrong size\nwrong colour\nwrong color\nnot what i ordered",
        "overcharge": "overcharged\ncharged twice\ndouble charged\ncharged me twice\ntoo much",
        "billing": "invoice\nbill\nrefund\npayment\ncharge",
        "staff_attitude": "rude\nimpolite\nunfriendly\nhung up\nyelled\ndisrespectful\nattitude",
        "product_defect": "defective\nfaulty\ndoesn't work\nstopped working\nfault",
        "service_outage": "outage\ndown\nnot working\ncan't log in\nunavailable",
        "anger": "furious\nangry\nunacceptable\nworst\nnever again\nridiculous\ndisgusting\nscam\nlawyer",
    },
    "es": {
        "late_delivery": "retraso\nretrasado\ntarde\nno ha llegado\nno llegó\ntodavía espero\ndónde está mi pedido",
        "damaged_item": "dañado\nroto\nrota\naplastado\nestropeado",
        "wrong_item": "equivocado\nequivocada\ntalla incorrecta\nno es lo que pedí",
        "overcharge": "cobrado dos veces\ncobro doble\ndoble cargo\nme cobraron de más\ncobro de más",
        "billing": "factura\nreembolso\npago\ncargo",
        "staff_attitude": "grosero\ngrosera\nmaleducado\nmal trato\nme colgó\nme gritó\nirrespetuoso\nactitud",
        "product_defect": "defectuoso\nno funciona\ndejó de funcionar\nfalla",
        "service_outage": "caído\ncaída del servicio\nno puedo entrar\nsin servicio",
        "anger": "furioso\nfuriosa\nindignado\ninaceptable\nvergüenza\nnunca más\nestafa\nridículo\nabogado",
    },
    "pt-br": {
        "late_delivery": "atraso\natrasado\natrasada\nnão chegou\nainda não chegou\ncadê meu pedido",
        "damaged_item": "danificado\nquebrado\nquebrada\namassado",
        "wrong_item": "errado\nerrada\ntamanho errado\nnão é o que pedi",
        "overcharge": "cobrado duas vezes\ncobrança duplicada\ncobrança em dobro\ncobraram a mais",
        "billing": "fatura\nboleto\nreembolso\npagamento\ncobrança",
        "staff_attitude": (
            "grosso\ngrossa\nmal-educado\nmal educado\ndesligou na minha cara\ngritou\ndesrespeito\natitude"
        ),
        "product_defect": "defeito\ndefeituoso\nnão funciona\nparou de funcionar",
        "service_outage": "fora do ar\nnão consigo entrar\nsem serviço\ninstável",
        "anger": "furioso\nfuriosa\nindignado\ninaceitável\nvergonha\nnunca mais\ngolpe\nabsurdo\nprocon\nadvogado",
    },
}

RECOMMENDATIONS = [
    # name, incident type, tier, past incidents, intervention, base, % of order, max, reason, rank
    (
        "Staff attitude: apologise",
        "staff_attitude",
        "",
        0,
        "apology",
        "0",
        "0",
        None,
        "Staff-attitude incidents are answered with respect and a sincere apology first.",
        10,
    ),
    (
        "Staff attitude, again: call back",
        "staff_attitude",
        "",
        1,
        "callback",
        "0",
        "0",
        None,
        "A repeat staff-attitude incident deserves a supervisor's call, not a coupon.",
        5,
    ),
    (
        "Overcharge: refund credit",
        "overcharge",
        "",
        0,
        "refund_credit",
        "5",
        "10",
        "50",
        "An overcharge is a money problem: compensate it, on top of fixing the charge.",
        10,
    ),
    (
        "Late delivery: discount",
        "late_delivery",
        "",
        0,
        "discount",
        "5",
        "5",
        "25",
        "A late delivery cost the customer time: a small discount on the next order.",
        20,
    ),
    (
        "Late delivery, valuable customer: gift card",
        "late_delivery",
        "gold",
        0,
        "gift_card",
        "10",
        "5",
        "40",
        "A gold customer kept waiting: a gift card shows we value them.",
        15,
    ),
    (
        "Damaged or wrong item: gift card",
        "damaged_item",
        "",
        0,
        "gift_card",
        "10",
        "10",
        "50",
        "Replace the item and add a gift card for the trouble.",
        20,
    ),
    (
        "Product defect: explain",
        "product_defect",
        "",
        0,
        "explanation",
        "0",
        "0",
        None,
        "Explain what happened and what we are doing about it.",
        30,
    ),
    (
        "Anything else: apologise",
        "",
        "",
        0,
        "apology",
        "0",
        "0",
        None,
        "When in doubt, a sincere apology within a minute.",
        100,
    ),
]


def load_defaults(apps) -> None:
    PriorityLevel = apps.get_model("feedback", "PriorityLevel")
    OwnerTeam = apps.get_model("feedback", "OwnerTeam")
    IncidentProfile = apps.get_model("feedback", "IncidentProfile")
    KeywordRule = apps.get_model("feedback", "KeywordRule")
    RecommendationRule = apps.get_model("feedback", "RecommendationRule")
    for priority, min_score, creates_case, first, resolution, business in priority_levels():
        PriorityLevel.objects.get_or_create(
            priority=priority,
            defaults={
                "min_score": min_score,
                "creates_case": creates_case,
                "first_response_seconds": first,
                "resolution_seconds": resolution,
                "business_hours_only": business,
            },
        )
    teams = {name: OwnerTeam.objects.get_or_create(name=name)[0] for name in TEAMS}
    for incident_type, (weight, team) in INCIDENTS.items():
        IncidentProfile.objects.get_or_create(
            incident_type=incident_type, defaults={"impact_weight": weight, "owner_team": teams.get(team)}
        )
    for language, rules in KEYWORDS.items():
        for target, keywords in rules.items():
            kind = "anger" if target == "anger" else "incident"
            KeywordRule.objects.create(
                language=language,
                kind=kind,
                incident_type="" if kind == "anger" else target,
                keywords=keywords,
                weight=1,
            )
    for name, incident, tier, past, intervention, base, percent, cap, reason, rank in RECOMMENDATIONS:
        RecommendationRule.objects.create(
            name=name,
            incident_type=incident,
            tier=tier,
            min_past_incidents=past,
            intervention=intervention,
            base_amount=Decimal(base),
            percent_of_order=Decimal(percent),
            max_amount=Decimal(cap) if cap else None,
            reason=reason,
            rank=rank,
        )


def defaults_restore(sender, **kwargs) -> None:
    """post_migrate: put the defaults back when a flush removed them."""
    from django.apps import apps

    if apps.get_model("feedback", "PriorityLevel").objects.exists():
        return
    load_defaults(apps)
