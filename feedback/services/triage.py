"""Triage of what a customer wrote: which incident it is, and how they feel.

- Incident type: the supervisors' keyword rules (`KeywordRule`, kind "incident") for the
  text's language. Each matching keyword adds its rule's weight to its incident type;
  the highest score wins, ties go to the higher `IncidentProfile.impact_weight`, then
  to the type's name.
- Sentiment (-1..1) and anger (0..1): VADER's compound score, plus the supervisors'
  anger terms (`KeywordRule`, kind "anger"), "!!" and shouting.

Nothing here writes or calls the network; rules are read through the cache (below).
What it can and cannot do per language: docs/feedback-triage.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from django.core.cache import cache as shared_cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from appease.issuance.models.customers import IncidentType
from feedback.models import LANGUAGES, IncidentProfile, KeywordRule

DEFAULT_LANGUAGE = "en"
LANGUAGE_CODES = tuple(code for code, _name in LANGUAGES)
# Rules are cached for a short while; a save or delete in this process forgets them at
# once (receivers at the end of this module), other processes see it within the TTL.
RULES_TTL = 60
DEFAULT_IMPACT = 20  # the impact weight of a type without an IncidentProfile

ANGER_PER_TERM = 0.2  # anger per anger term (times its rule's weight)
PULL_PER_TERM = 0.25  # es/pt-br: sentiment pulled negative per anger term
ANGER_FROM_NEGATIVE = 0.5  # anger per unit of negative VADER compound
ANGER_EXCLAMATIONS = 0.1  # two or more "!"
ANGER_SHOUTING = 0.1  # more than half of at least 10 letters are capitals
SHOUTING_MIN_LETTERS = 10

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


@dataclass(frozen=True)
class Triage:
    incident_type: str  # an IncidentType value; "other" when nothing matched and none given
    inferred: bool  # True when it came from keyword rules rather than the caller
    matched: tuple[str, ...]  # the keywords that matched (for showing "why")
    sentiment: float | None  # -1..1 (None for empty text)
    anger: float | None  # 0..1 (None for empty text)
    anger_terms: tuple[str, ...]


@dataclass(frozen=True)
class _Rule:
    """A KeywordRule as matching needs it: plain values, cheap to cache."""

    kind: str
    incident_type: str
    weight: int
    keywords: tuple[tuple[str, str], ...]  # (as the supervisor wrote it, normalised)


def normalise(text: str) -> str:
    """Casefolded, without accents, typographic apostrophes made plain, whitespace collapsed."""
    folded = unicodedata.normalize("NFKD", (text or "").casefold().translate(_APOSTROPHES))
    return " ".join("".join(char for char in folded if not unicodedata.combining(char)).split())


def language_for(code: str | None) -> str:
    """One of the rule languages ("en", "es", "pt-br") for a code such as "es-AR",
    "pt-BR", "pt-br" or "en-GB" (or an Accept-Language value); "en" otherwise."""
    first = (code or "").split(",")[0].split(";")[0].strip().casefold()
    primary = re.split(r"[-_]", first, maxsplit=1)[0]
    return {"en": "en", "es": "es", "pt": "pt-br"}.get(primary, DEFAULT_LANGUAGE)


def infer_incident_type(
    text: str, language: str, *, rules: Iterable[KeywordRule] | None = None
) -> tuple[str | None, tuple[str, ...]]:
    """(incident type, its matching keywords) from the keyword rules, or (None, ()).

    `rules` replaces the language's active rules from the database; they are used as given.
    """
    normalised = normalise(text)
    if not normalised:
        return None, ()
    return _infer(normalised, _resolve(language, rules))


def sentiment_of(
    text: str, language: str, *, rules: Iterable[KeywordRule] | None = None
) -> tuple[float | None, float | None, tuple[str, ...]]:
    """(sentiment -1..1, anger 0..1, anger terms found); (None, None, ()) for empty text.

    `rules` replaces the language's active rules from the database; they are used as given.
    """
    if not (text or "").strip():
        return None, None, ()
    code = language_for(language)
    return _feel(text, code, _resolve(code, rules))


def triage(*, text: str, language: str, incident_type: str = "") -> Triage:
    """The incident type (the caller's if given, else inferred, else "other") and the
    feeling of a piece of feedback."""
    if incident_type and incident_type not in IncidentType.values:
        raise ValidationError({"incident_type": _("Unknown incident type.")}, code="invalid")
    code = language_for(language)
    rules = _resolve(code, None)
    sentiment, anger, anger_terms = _feel(text, code, rules) if (text or "").strip() else (None, None, ())
    if incident_type:
        return Triage(incident_type, False, (), sentiment, anger, anger_terms)
    inferred, matched = _infer(normalise(text), rules)
    if inferred is None:
        return Triage(IncidentType.OTHER.value, False, (), sentiment, anger, anger_terms)
    return Triage(inferred, True, matched, sentiment, anger, anger_terms)


# --- matching --------------------------------------------------------------------------


def _infer(normalised: str, rules: tuple[_Rule, ...]) -> tuple[str | None, tuple[str, ...]]:
    if not normalised:
        return None, ()
    scores: dict[str, int] = {}
    matched: dict[str, list[str]] = {}
    for rule in rules:
        if rule.kind != KeywordRule.Kind.INCIDENT or not rule.incident_type or rule.weight <= 0:
            continue
        hits = _hits(normalised, rule)
        if hits:
            scores[rule.incident_type] = scores.get(rule.incident_type, 0) + rule.weight * len(hits)
            seen = matched.setdefault(rule.incident_type, [])
            seen.extend(hit for hit in hits if hit not in seen)
    if not scores:
        return None, ()
    best = max(scores.values())
    tied = sorted(incident for incident, score in scores.items() if score == best)
    if len(tied) > 1:
        weights = impact_weights()
        tied.sort(key=lambda incident: (-weights.get(incident, DEFAULT_IMPACT), incident))
    return tied[0], tuple(matched[tied[0]])


def _hits(normalised: str, rule: _Rule) -> list[str]:
    """The rule's keywords (as written) found in the normalised text, each once."""
    hits: list[str] = []
    seen: set[str] = set()
    for written, keyword in rule.keywords:
        if keyword not in seen and _pattern(keyword).search(normalised):
            seen.add(keyword)
            hits.append(written)
    return hits


@lru_cache(maxsize=4096)
def _pattern(keyword: str) -> re.Pattern[str]:
    # Whole words: "late" must not match "chocolate". Look-arounds rather than \b, so a
    # keyword that starts or ends with punctuation still matches where it stands alone.
    return re.compile(rf"(?<!\w){re.escape(keyword)}(?!\w)")


# --- feeling ---------------------------------------------------------------------------


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    """One analyzer per process: it reads its lexicon files (local, no network) once."""
    return SentimentIntensityAnalyzer()


def _feel(text: str, language: str, rules: tuple[_Rule, ...]) -> tuple[float, float, tuple[str, ...]]:
    # VADER reads the original text: capitals and punctuation are part of what it scores.
    compound = _analyzer().polarity_scores(text)["compound"]
    normalised = normalise(text)
    terms: list[str] = []
    count = 0
    for rule in rules:
        if rule.kind != KeywordRule.Kind.ANGER or rule.weight <= 0:
            continue
        hits = _hits(normalised, rule)
        count += rule.weight * len(hits)
        terms.extend(hit for hit in hits if hit not in terms)
    # VADER's lexicon is English: Spanish and Portuguese words mostly score nothing, so
    # there the supervisors' anger terms pull the score down instead.
    sentiment = compound if language == "en" else max(-1.0, compound - PULL_PER_TERM * count)
    anger = ANGER_FROM_NEGATIVE * max(0.0, -compound) + ANGER_PER_TERM * count
    if text.count("!") >= 2:
        anger += ANGER_EXCLAMATIONS
    letters = [char for char in text if char.isalpha()]
    if len(letters) >= SHOUTING_MIN_LETTERS and 2 * sum(char.isupper() for char in letters) > len(letters):
        anger += ANGER_SHOUTING
    return _round(sentiment), _round(min(1.0, max(0.0, anger))), tuple(terms)


def _round(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


# --- rules, cached ---------------------------------------------------------------------


def _rules_key(language: str) -> str:
    return f"feedback:triage:v1:rules:{language}"


_WEIGHTS_KEY = "feedback:triage:v1:impact-weights"


def _resolve(language: str, rules: Iterable[KeywordRule] | None) -> tuple[_Rule, ...]:
    if rules is not None:
        return tuple(rule if isinstance(rule, _Rule) else _plain(rule) for rule in rules)
    return _rules_for(language_for(language))


def _rules_for(language: str) -> tuple[_Rule, ...]:
    key = _rules_key(language)
    rules = shared_cache.get(key)
    if rules is None:
        rules = tuple(_plain(rule) for rule in KeywordRule.objects.filter(is_active=True, language=language))
        shared_cache.set(key, rules, RULES_TTL)
    return rules


def _plain(rule: KeywordRule) -> _Rule:
    keywords = tuple((written, normalise(written)) for written in rule.keyword_list)
    return _Rule(
        kind=rule.kind,
        incident_type=rule.incident_type,
        weight=rule.weight,
        keywords=tuple((written, keyword) for written, keyword in keywords if keyword),
    )


def impact_weights() -> dict[str, int]:
    """Each incident type's impact weight (IncidentProfile), cached like the rules; a
    type missing here weighs DEFAULT_IMPACT."""
    weights = shared_cache.get(_WEIGHTS_KEY)
    if weights is None:
        weights = dict(IncidentProfile.objects.values_list("incident_type", "impact_weight"))
        shared_cache.set(_WEIGHTS_KEY, weights, RULES_TTL)
    return weights


@receiver(post_save, sender=KeywordRule, dispatch_uid="feedback.triage.keyword_rule_saved")
@receiver(post_delete, sender=KeywordRule, dispatch_uid="feedback.triage.keyword_rule_deleted")
@receiver(post_save, sender=IncidentProfile, dispatch_uid="feedback.triage.incident_profile_saved")
@receiver(post_delete, sender=IncidentProfile, dispatch_uid="feedback.triage.incident_profile_deleted")
def _forget_rules(sender, using=None, **kwargs) -> None:
    """Cache invalidation only, not domain flow: an edit in the admin applies at once."""
    keys = [_rules_key(code) for code in LANGUAGE_CODES] + [_WEIGHTS_KEY]
    shared_cache.delete_many(keys)
    # A reader that loaded the old rows between the write and its commit may have cached
    # them again: forget once more when the write is visible to everyone.
    transaction.on_commit(lambda: shared_cache.delete_many(keys), using=using)
