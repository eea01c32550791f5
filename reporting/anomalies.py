"""Anomalies in who gives what: reps who give far more than reps of a similar volume,
one customer appeased again and again, customers served by many reps, offers whose
codes go unused.

Everything is counted in the database (six queries, whatever the number of
issuances); Python only compares the per-rep and per-offer rows. The definitions, and
why the comparison is a robust z-score, are in docs/reporting-anomalies.md.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from appease.core.money import currency_exponent
from appease.issuance.selectors import IssuanceStatus
from reporting import selectors
from reporting.facts import ISSUANCES, zone
from reporting.filters import ReportFilter
from reporting.models import AnomalyScan

KINDS = ("rep_rate", "rep_value", "rep_repeat_customer", "customer_many_reps", "offer_low_redemption")
KIND_LABELS = {
    "rep_rate": gettext_lazy("Issues often, for the cases handled"),
    "rep_value": gettext_lazy("Gives much value, for the cases handled"),
    "rep_repeat_customer": gettext_lazy("Appeases one customer again and again"),
    "customer_many_reps": gettext_lazy("Collects from many reps"),
    "offer_low_redemption": gettext_lazy("Codes go unused"),
}

Z_THRESHOLD = 3.5
# Iglewicz & Hoaglin: the MAD of a normal distribution is 0.6745 σ, so 0.6745 (x − median) / MAD
# reads like an ordinary z-score.
MAD_FACTOR = 0.6745
# When more than half the peers share one value the MAD is 0. The mean absolute deviation
# of a normal distribution is √(2/π) σ ≈ 0.7979 σ, so σ ≈ 1.2533 × mean AD (1.2533 = √(π/2)).
MEAN_AD_FACTOR = 1.2533
NO_SPREAD_RATIO = 3  # all peers alike: flag a rep above three times their value
REPEAT_CUSTOMER_MIN = 3
MANY_REPS_MIN = 3
MANY_CHANNELS_MIN = 3
MANY_TIMES_AVERAGE = 2.5  # a customer flagged across reps collects at least 2.5× the average
MAX_FLAGS_PER_KIND = 50  # the most extreme; a page of thousands of flags helps nobody
OFFER_MIN_CODES = 30
OFFER_MATURITY = timedelta(days=14)
OFFER_LOW_SHARE_OF_MEDIAN = 0.25

NOT_GIVEN = (IssuanceStatus.PENDING_APPROVAL, IssuanceStatus.REJECTED, IssuanceStatus.VOIDED)


@dataclass(frozen=True)
class Flag:
    kind: str  # one of KINDS
    subject: str  # rep username, customer name or offer name
    subject_id: int  # user id, customer id or offer id
    value: float  # the measured figure (rate, value per case, count, used rate)
    baseline: float  # the peers' median, or the threshold
    score: float | None  # the robust z-score where one applies
    facts: dict  # the numbers behind it, worded by `evidence` in the reader's language
    filters: dict  # query parameters of the drill-down list of issuances behind the flag

    @property
    def evidence(self) -> str:
        """One plain sentence with the numbers, in the current language."""
        return EVIDENCE[self.kind](self.facts)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Comparison:
    median: float
    score: float | None  # None: the peers have no spread at all
    scale: str  # "mad", "mean_ad" or "none"


@dataclass(frozen=True)
class _Rep:
    id: int
    username: str
    cases: int


def anomalies(filters: ReportFilter, *, rep_id: int | None = None, min_peers: int = 5) -> list[Flag]:
    """Flags for the period and filters of `filters`, ordered by kind, most extreme first.

    With `rep_id`, only that rep's flags (the rep's page), still against every peer.
    Pending, rejected and voided issuances never count: nothing was given.
    """
    dates = _dates(filters)
    reps = _reps_with_cases(filters)
    flags = [
        *_rep_flags(filters=filters, reps=reps, dates=dates, min_peers=min_peers, only=rep_id),
        *_repeat_customer_flags(filters=filters, dates=dates, only=rep_id),
    ]
    if rep_id is None:
        flags += [
            *_many_reps_flags(filters=filters, dates=dates),
            *_offer_flags(filters=filters, dates=dates, min_peers=min_peers),
        ]
    return sorted(flags, key=_order)


def anomalies_shown(filters: ReportFilter, *, now=None) -> tuple[list[Flag], AnomalyScan | None]:
    """The flags for the anomalies page: beat's scan when the page asks for one of its
    windows (the last N days up to today, no other filter) and the scan is of today,
    else counted now. Returns the flags and the scan they came from (or None)."""
    now = now or timezone.now()
    first, last = filters.dates
    today = now.astimezone(zone()).date()
    if not filters.dimensions() and last == today:
        scan = AnomalyScan.objects.filter(days=(last - first).days + 1, date_from=first, date_to=last).first()
        fresh = timedelta(minutes=2 * settings.REPORTING_ANOMALY_SCAN_MINUTES)
        if scan is not None and now - scan.computed_at <= fresh:
            return [Flag(**flag) for flag in scan.flags], scan
    return anomalies(filters), None


# --- The database side: one GROUP BY query each ---------------------------------------


def _reps_with_cases(filters: ReportFilter) -> list[_Rep]:
    """Reps and their handled cases (assigned to them, opened in the period, in the
    filters' team), fewest first. A rep who gave nothing is a peer with a rate of 0."""
    handled = selectors.cases_handled(filters)
    names = dict(get_user_model().objects.filter(pk__in=handled).values_list("pk", "username"))
    reps = [_Rep(id=rep, username=names.get(rep, str(rep)), cases=cases) for rep, cases in handled.items()]
    return sorted(reps, key=lambda rep: (rep.cases, rep.id))


def _per_rep(filters: ReportFilter) -> tuple[dict[int, int], dict[str, dict[int, float]]]:
    """Appeasements given per rep, and their face value per currency and rep."""
    facts = filters.facts(ISSUANCES, by=["rep", "currency"])
    rows = (
        facts.qs.filter(csr__isnull=False)
        .values("csr_id", "currency")
        .annotate(count=facts.total("issuances"), face=facts.total("face_value_amount"))
        .filter(count__gt=0)
        .order_by()
    )
    counts: dict[int, int] = defaultdict(int)
    faces: dict[str, dict[int, float]] = defaultdict(dict)  # currency → rep → face value
    for row in rows:
        counts[row["csr_id"]] += row["count"]
        faces[row["currency"]][row["csr_id"]] = float(row["face"])
    return counts, faces


# --- Reps against reps of a similar volume ---------------------------------------------


def _volume_peers(reps: list[_Rep], *, cases: int, rep_id: int) -> list[_Rep]:
    """The reps (sorted by cases) who handled half to double `cases`, but the rep."""
    case_counts = [rep.cases for rep in reps]
    low, high = bisect_left(case_counts, cases / 2), bisect_right(case_counts, cases * 2)
    return [peer for peer in reps[low:high] if peer.id != rep_id]


def peer_rate(filters: ReportFilter, *, rep_id: int, cases: int) -> dict | None:
    """Issuances per handled case of the reps with a similar volume (half to double
    `cases`, the rep's own count), for the rep's page: their number and median.
    `filters` must not name the rep: the peers are everyone else."""
    if not cases:
        return None
    peers = _volume_peers(_reps_with_cases(filters), cases=cases, rep_id=rep_id)
    if not peers:
        return {"count": 0, "median": None}
    counts, _faces = _per_rep(filters)
    median = statistics.median(counts.get(peer.id, 0) / peer.cases for peer in peers)
    return {"count": len(peers), "median": median, "low": cases // 2, "high": cases * 2}


def _rep_flags(*, filters: ReportFilter, reps: list[_Rep], dates: dict, min_peers: int, only: int | None) -> list[Flag]:
    counts, faces = _per_rep(filters)
    flags = []
    for rep in reps:
        if only is not None and rep.id != only:
            continue
        # Reps with no handled case are never in `reps`: a rate needs a denominator.
        peers = _volume_peers(reps, cases=rep.cases, rep_id=rep.id)
        if len(peers) < min_peers:
            continue
        rate = counts[rep.id] / rep.cases
        comparison = _compare(rate, [counts[peer.id] / peer.cases for peer in peers])
        if _high(rate, comparison):
            flags.append(
                Flag(
                    kind="rep_rate",
                    subject=rep.username,
                    subject_id=rep.id,
                    value=rate,
                    baseline=comparison.median,
                    score=comparison.score,
                    facts={
                        "rate": rate,
                        "count": counts[rep.id],
                        "cases": rep.cases,
                        "median": comparison.median,
                        "how": _how_facts(comparison, peers),
                    },
                    filters={"rep": rep.id, **dates},
                )
            )
        for currency in sorted(faces):
            by_rep = faces[currency]
            if rep.id not in by_rep:
                continue
            # Peers in this currency are the peers who gave in it: a rep of another
            # market is not a rep who gives nothing.
            currency_peers = [peer for peer in peers if peer.id in by_rep]
            if len(currency_peers) < min_peers:
                continue
            value = by_rep[rep.id] / rep.cases
            comparison = _compare(value, [by_rep[peer.id] / peer.cases for peer in currency_peers])
            if _high(value, comparison):
                flags.append(
                    Flag(
                        kind="rep_value",
                        subject=rep.username,
                        subject_id=rep.id,
                        value=value,
                        baseline=comparison.median,
                        score=comparison.score,
                        facts={
                            "value": _money(value, currency),
                            "total": _money(by_rep[rep.id], currency),
                            "currency": currency,
                            "cases": rep.cases,
                            "median": _money(comparison.median, currency),
                            "how": _how_facts(comparison, currency_peers),
                        },
                        filters={"rep": rep.id, **dates},
                    )
                )
    return flags


def _high(value: float, comparison: _Comparison) -> bool:
    if comparison.score is None:
        return value > comparison.median * NO_SPREAD_RATIO
    return comparison.score > Z_THRESHOLD


def _how_facts(comparison: _Comparison, peers: list[_Rep]) -> dict:
    low, high = min(peer.cases for peer in peers), max(peer.cases for peer in peers)
    return {
        "scale": comparison.scale,
        "z": comparison.score,
        "peers": len(peers),
        "cases": f"{low}–{high}" if low != high else str(low),
    }


def _how(facts: dict) -> str:
    numbers = {key: facts[key] for key in ("z", "peers", "cases")}
    scale = facts["scale"]
    if scale == "mad":
        return _("robust z %(z).1f, %(peers)d peers with %(cases)s cases") % numbers
    if scale == "mean_ad":
        return (
            _(
                "robust z %(z).1f from the mean absolute deviation as most peers are equal, "
                "%(peers)d peers with %(cases)s cases"
            )
            % numbers
        )
    return _("all %(peers)d peers with %(cases)s cases are equal; flagged above three times them") % numbers


# --- Customers -----------------------------------------------------------------------------


def _given(filters: ReportFilter) -> QuerySet:
    # Customers are not in any rollup (a row per customer would be a row per issuance):
    # these read the live rows, as the list page does.
    return selectors.given(filters.qs).order_by()


def _repeat_customer_flags(*, filters: ReportFilter, dates: dict, only: int | None) -> list[Flag]:
    given = _given(filters).filter(csr__isnull=False)
    if only is not None:
        given = given.filter(csr=only)
    rows = (
        given.values("csr", "csr__username", "customer", "customer__name")
        .annotate(count=Count("pk"))
        .filter(count__gte=REPEAT_CUSTOMER_MIN)
        .order_by("-count", "csr", "customer")[:MAX_FLAGS_PER_KIND]
    )
    return [
        Flag(
            kind="rep_repeat_customer",
            subject=row["csr__username"],
            subject_id=row["csr"],
            value=float(row["count"]),
            baseline=float(REPEAT_CUSTOMER_MIN),
            score=None,
            facts={
                "rep": row["csr__username"],
                "customer": row["customer__name"],
                "customer_id": row["customer"],
                "count": row["count"],
                "threshold": REPEAT_CUSTOMER_MIN,
            },
            filters={"rep": row["csr"], "customer": row["customer"], **dates},
        )
        for row in rows
    ]


def _many_reps_flags(*, filters: ReportFilter, dates: dict) -> list[Flag]:
    given = _given(filters)
    # In a large centre a returning customer meets a different rep each time, so several
    # reps alone mean nothing: flag those who also collect far more appeasements than the
    # average customer (MANY_TIMES_AVERAGE times), the farming pattern.
    overall = given.aggregate(issuances=Count("pk"), customers=Count("customer", distinct=True))
    average = overall["issuances"] / overall["customers"] if overall["customers"] else 0
    rows = (
        given.values("customer", "customer__name")
        .annotate(count=Count("pk"), reps=Count("csr", distinct=True), channels=Count("channel", distinct=True))
        .filter(Q(reps__gte=MANY_REPS_MIN) | Q(channels__gte=MANY_CHANNELS_MIN))
        .filter(count__gte=max(MANY_REPS_MIN, MANY_TIMES_AVERAGE * average))
        .order_by("-count")[:MAX_FLAGS_PER_KIND]
    )
    return [
        Flag(
            kind="customer_many_reps",
            subject=row["customer__name"],
            subject_id=row["customer"],
            value=float(row["reps"]),
            baseline=float(MANY_REPS_MIN),
            score=None,
            facts={
                "customer": row["customer__name"],
                "count": row["count"],
                "reps": row["reps"],
                "channels": row["channels"],
                "reps_min": MANY_REPS_MIN,
                "channels_min": MANY_CHANNELS_MIN,
            },
            filters={"customer": row["customer"], **dates},
        )
        for row in rows
    ]


# --- Offers whose codes go unused ------------------------------------------------------


def _offer_flags(*, filters: ReportFilter, dates: dict, min_peers: int) -> list[Flag]:
    # Codes issued in the last two weeks have not had their chance to be used yet.
    first, last = filters.dates
    if last - OFFER_MATURITY < first:
        return []
    facts = filters.facts(ISSUANCES, by=["offer"], dates=(first, last - OFFER_MATURITY))
    rows = list(
        facts.qs.values(offer_key=F("offer_id"), offer_name=F("offer__name"))
        .annotate(issued=facts.total("with_code"), used=facts.total("used"))
        .filter(issued__gte=OFFER_MIN_CODES)
        .order_by()
    )
    rates = {row["offer_key"]: row["used"] / row["issued"] for row in rows}
    flags = []
    for row in rows:
        others = [rate for offer, rate in rates.items() if offer != row["offer_key"]]
        if len(others) < min_peers:
            continue
        rate = rates[row["offer_key"]]
        comparison = _compare(rate, others)
        low_z = comparison.score is not None and comparison.score < -Z_THRESHOLD
        if not (low_z or rate < comparison.median * OFFER_LOW_SHARE_OF_MEDIAN):
            continue
        flags.append(
            Flag(
                kind="offer_low_redemption",
                subject=row["offer_name"],
                subject_id=row["offer_key"],
                value=rate,
                baseline=comparison.median,
                score=comparison.score,
                facts={
                    "used": row["used"],
                    "issued": row["issued"],
                    "rate": rate * 100,
                    "median": comparison.median * 100,
                    "others": len(others),
                    "z": comparison.score,
                },
                filters={"offer": row["offer_key"], **dates},
            )
        )
    return flags


# --- Statistics and presentation -------------------------------------------------------


def _compare(value: float, others: list[float]) -> _Comparison:
    """The Iglewicz–Hoaglin modified z-score of `value` against `others`."""
    median = statistics.median(others)
    deviations = [abs(other - median) for other in others]
    mad = statistics.median(deviations)
    if mad > 0:
        return _Comparison(median=median, score=MAD_FACTOR * (value - median) / mad, scale="mad")
    mean_ad = statistics.fmean(deviations)
    if mean_ad > 0:
        return _Comparison(median=median, score=(value - median) / (MEAN_AD_FACTOR * mean_ad), scale="mean_ad")
    return _Comparison(median=median, score=None, scale="none")


def _order(flag: Flag) -> tuple:
    """By kind, then the most extreme first: the larger |z| (no spread at all counts as
    infinite), then the further from the baseline; counts by size."""
    if flag.kind in ("rep_repeat_customer", "customer_many_reps"):
        extremity, distance = flag.value, 0.0
    else:
        extremity = math.inf if flag.score is None else abs(flag.score)
        high, low = (flag.value, flag.baseline) if flag.kind != "offer_low_redemption" else (flag.baseline, flag.value)
        distance = high / low if low else math.inf
    return (KINDS.index(flag.kind), -extremity, -distance, flag.subject, flag.subject_id)


def _money(amount: float, currency: str) -> str:
    return f"{amount:.{currency_exponent(currency)}f}"


def _dates(filters: ReportFilter) -> dict:
    """The period as the drill-down's whole days; `date_to` is inclusive there."""
    first, last = filters.dates
    return {"date_from": first.isoformat(), "date_to": last.isoformat()}


# --- Evidence, worded when shown --------------------------------------------------------


def _rep_rate_evidence(facts: dict) -> str:
    return _(
        "%(rate).2f issuances per handled case (%(count)d over %(cases)d cases) against a "
        "peer median of %(median).2f (%(how)s)."
    ) % {**facts, "how": _how(facts["how"])}


def _rep_value_evidence(facts: dict) -> str:
    return _(
        "%(value)s %(currency)s face value per handled case (%(total)s %(currency)s over "
        "%(cases)d cases) against a peer median of %(median)s %(currency)s (%(how)s)."
    ) % {**facts, "how": _how(facts["how"])}


def _rep_repeat_customer_evidence(facts: dict) -> str:
    return (
        _(
            "%(rep)s gave %(customer)s (customer #%(customer_id)d) %(count)d appeasements in the period; "
            "%(threshold)d or more to one customer is flagged."
        )
        % facts
    )


def _customer_many_reps_evidence(facts: dict) -> str:
    return (
        _(
            "%(customer)s got %(count)d appeasements from %(reps)d different reps through %(channels)d "
            "channels in the period; %(reps_min)d reps or %(channels_min)d channels are flagged."
        )
        % facts
    )


def _offer_low_redemption_evidence(facts: dict) -> str:
    score = "" if facts["z"] is None else _(", robust z %(z).1f") % {"z": facts["z"]}
    return _(
        "Only %(used)d of %(issued)d codes issued 14 days or more before the end of the period were "
        "used (%(rate).0f%%) against a median of %(median).0f%% for %(others)d other offers%(score)s: "
        "check that the codes reach customers (delivery, channel, message)."
    ) % {**facts, "score": score}


EVIDENCE = {
    "rep_rate": _rep_rate_evidence,
    "rep_value": _rep_value_evidence,
    "rep_repeat_customer": _rep_repeat_customer_evidence,
    "customer_many_reps": _customer_many_reps_evidence,
    "offer_low_redemption": _offer_low_redemption_evidence,
}
