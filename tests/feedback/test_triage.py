"""Triage: incident type from the supervisors' keyword rules, sentiment and anger.

The keyword rules seeded by feedback/migrations/0002_defaults.py are in the test database."""

import socket

import pytest
from django.core.exceptions import ValidationError

from feedback.models import IncidentProfile, KeywordRule
from feedback.services import triage as triage_module
from feedback.services.triage import infer_incident_type, language_for, normalise, sentiment_of, triage

# --- normalising and languages -----------------------------------------------------------


def test_normalise_folds_case_strips_accents_and_collapses_whitespace():
    # given
    text = "  El paquete LLEGÓ\n\t dañado,  Straße ﬁne\u00a0 "
    # when
    normalised = normalise(text)
    # then
    assert normalised == "el paquete llego danado, strasse fine"


def test_normalise_makes_typographic_apostrophes_plain():
    # given: phones type ’ for '
    text = "It hasn’t arrived"
    # when / then
    assert normalise(text) == "it hasn't arrived"


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("es", "es"),
        ("es-AR", "es"),
        ("ES_mx", "es"),
        ("pt", "pt-br"),
        ("pt-BR", "pt-br"),
        ("pt_BR", "pt-br"),
        ("pt-PT", "pt-br"),
        ("en-GB", "en"),
        ("en", "en"),
        ("fr-FR", "en"),
        ("es-AR,es;q=0.9,en;q=0.8", "es"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_for_maps_codes_to_a_rule_language(code, language):
    assert language_for(code) == language


# --- incident type from the seeded rules -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "language", "incident_type", "matched"),
    [
        ("My parcel still hasn't arrived", "en", "late_delivery", ("hasn't arrived",)),
        ("My parcel still hasn’t arrived", "en", "late_delivery", ("hasn't arrived",)),
        # a tie with billing ("factura"): overcharge has the higher impact weight (35 > 30)
        ("Me cobraron de más en la factura", "es", "overcharge", ("me cobraron de más",)),
        ("O atendente foi muito grosso comigo", "pt-br", "staff_attitude", ("grosso",)),
        ("O atendente foi muito grosso comigo", "pt-BR", "staff_attitude", ("grosso",)),
        # accents ignored both ways: the rule says "dañado", the customer typed "danado"
        ("el paquete llegó danado", "es", "damaged_item", ("dañado",)),
        ("Meu pedido ainda nao chegou", "pt-br", "late_delivery", ("não chegou", "ainda não chegou")),
    ],
)
def test_the_seeded_rules_infer_the_incident_type(text, language, incident_type, matched):
    # when
    inferred, keywords = infer_incident_type(text, language)
    # then
    assert inferred == incident_type
    assert keywords == matched


@pytest.mark.django_db
def test_a_phrase_matches_only_as_written():
    # given: the seeded phrase is "cobrado dos veces", not "cobraron dos veces"
    text = "me cobraron dos veces"
    # when / then
    assert infer_incident_type(text, "es") == (None, ())


@pytest.mark.django_db
def test_keywords_match_whole_words_only():
    # given: "late" is an English late-delivery keyword
    # when
    inside_a_word = infer_incident_type("I ordered chocolate and a latex glove", "en")
    as_a_word = infer_incident_type("The chocolate arrived late.", "en")
    # then
    assert inside_a_word == (None, ())
    assert as_a_word == ("late_delivery", ("late",))


@pytest.mark.django_db
def test_the_highest_score_wins():
    # given: two late-delivery keywords against one damaged-item keyword
    text = "The order is late and delayed, and the box was broken"
    # when
    inferred, matched = infer_incident_type(text, "en")
    # then
    assert inferred == "late_delivery"
    assert matched == ("late", "delayed")


@pytest.mark.django_db
def test_a_tie_goes_to_the_higher_impact_weight_then_to_the_name():
    # given: "charged twice" (overcharge, 35) and "invoice" (billing, 30) score one each
    text = "I was charged twice on my invoice"
    # when / then
    assert infer_incident_type(text, "en") == ("overcharge", ("charged twice",))

    # given: a supervisor raises billing's weight
    billing = IncidentProfile.objects.get(incident_type="billing")
    billing.impact_weight = 50
    billing.save()
    # when / then: used at once
    assert infer_incident_type(text, "en") == ("billing", ("invoice",))

    # given: "broken" (damaged_item, 25) and "wrong item" (wrong_item, 25): equal weights
    # when / then
    assert infer_incident_type("A broken and wrong item", "en") == ("damaged_item", ("broken",))


@pytest.mark.django_db
def test_a_rule_weight_counts_per_keyword():
    # given: one heavy damaged-item keyword against two late-delivery keywords
    KeywordRule.objects.create(language="en", incident_type="damaged_item", keywords="dented", weight=3)
    text = "It was late and delayed, and the tin is dented"
    # when
    inferred, matched = infer_incident_type(text, "en")
    # then
    assert inferred == "damaged_item"
    assert matched == ("dented",)


@pytest.mark.django_db
def test_a_rule_a_supervisor_adds_is_used_at_once():
    # given: the rules are cached by a first triage
    before = triage(text="The lid came dented", language="en")
    assert (before.incident_type, before.inferred) == ("other", False)
    # when
    KeywordRule.objects.create(language="en", incident_type="damaged_item", keywords="Dented\nscratched")
    after = triage(text="The lid came dented", language="en")
    # then
    assert after.incident_type == "damaged_item"
    assert after.inferred is True
    assert after.matched == ("Dented",)


@pytest.mark.django_db
def test_a_deactivated_or_deleted_rule_is_not_used():
    # given: the rules are cached by a first triage
    text = "My parcel still hasn't arrived"
    assert triage(text=text, language="en").incident_type == "late_delivery"
    rule = KeywordRule.objects.get(language="en", kind="incident", incident_type="late_delivery")
    # when
    rule.is_active = False
    rule.save()
    # then
    assert infer_incident_type(text, "en") == (None, ())

    # given: active again, then deleted
    rule.is_active = True
    rule.save()
    assert infer_incident_type(text, "en") == ("late_delivery", ("hasn't arrived",))
    # when
    rule.delete()
    # then
    assert infer_incident_type(text, "en") == (None, ())


@pytest.mark.django_db
def test_rules_of_another_language_are_not_used():
    # given: "atraso" is a Portuguese keyword only
    # when / then
    assert infer_incident_type("Houve um atraso", "pt-br") == ("late_delivery", ("atraso",))
    assert infer_incident_type("Houve um atraso", "en") == (None, ())


def test_explicit_rules_need_no_database():
    # given: no django_db mark, so any query would fail the test
    rules = [
        KeywordRule(language="en", kind="incident", incident_type="wrong_item", keywords="odd socks"),
        KeywordRule(language="en", kind="anger", incident_type="", keywords="livid"),
    ]
    # when
    inferred = infer_incident_type("Odd socks again. I am livid", "en", rules=rules)
    feeling = sentiment_of("Odd socks again. I am livid", "en", rules=rules)
    # then
    assert inferred == ("wrong_item", ("odd socks",))
    assert feeling[2] == ("livid",)


# --- the caller's type, the fallback -----------------------------------------------------


@pytest.mark.django_db
def test_the_callers_incident_type_wins():
    # when
    result = triage(text="My parcel still hasn't arrived", language="en", incident_type="billing")
    # then
    assert result.incident_type == "billing"
    assert result.inferred is False
    assert result.matched == ()


@pytest.mark.django_db
def test_an_unknown_incident_type_is_refused():
    with pytest.raises(ValidationError) as error:
        triage(text="Hello", language="en", incident_type="alien_abduction")
    assert "incident_type" in error.value.message_dict


@pytest.mark.django_db
def test_nothing_matched_falls_back_to_other_not_inferred():
    # when
    result = triage(text="I would like to change my address", language="en")
    # then
    assert result.incident_type == "other"
    assert result.inferred is False
    assert result.matched == ()
    assert result.sentiment is not None


@pytest.mark.django_db
def test_triage_infers_and_reads_the_feeling_in_one_go():
    # when
    result = triage(text="¡¡Me cobraron de más!! Es una vergüenza", language="es-AR")
    # then
    assert result.incident_type == "overcharge"
    assert result.inferred is True
    assert result.matched == ("me cobraron de más",)
    assert result.anger_terms == ("vergüenza",)
    assert result.sentiment == -0.25  # VADER scores no Spanish word: 0 - 0.25 × 1 anger term
    assert result.anger == 0.3  # 0.2 × 1 anger term + 0.1 for "!!"


# --- sentiment and anger -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "angry", "calm", "terms"),
    [
        (
            "en",
            "This is UNACCEPTABLE!!! The worst service ever, I am furious.",
            "Thanks, the parcel arrived on time.",
            ("furious", "unacceptable", "worst"),
        ),
        (
            "es",
            "¡¡Es inaceptable!! Estoy furioso, una vergüenza.",
            "Gracias, el pedido llegó bien.",
            ("furioso", "inaceptable", "vergüenza"),
        ),
        (
            "pt-br",
            "Isso é um absurdo!! Estou furioso, vou no Procon.",
            "Obrigado, o pedido chegou certinho.",
            ("furioso", "absurdo", "procon"),
        ),
    ],
)
def test_an_angry_text_is_angrier_than_a_calm_one(language, angry, calm, terms):
    # when
    angry_sentiment, angry_anger, angry_terms = sentiment_of(angry, language)
    calm_sentiment, calm_anger, calm_terms = sentiment_of(calm, language)
    # then
    assert angry_terms == terms
    assert calm_terms == ()
    assert angry_anger >= 0.7
    assert calm_anger == 0.0
    assert angry_sentiment < -0.5
    assert calm_sentiment >= 0.0


@pytest.mark.django_db
def test_positive_english_is_positive_and_negation_is_read():
    # when
    praise, praise_anger, _ = sentiment_of("Thank you, the support was great and the delivery was fast!", "en")
    plain, _, _ = sentiment_of("The delivery was good", "en")
    negated, _, _ = sentiment_of("The delivery was not good", "en")
    # then
    assert praise > 0.5
    assert praise_anger == 0.0
    assert plain > 0.0
    assert negated < 0.0


@pytest.mark.django_db
def test_spanish_anger_terms_pull_the_sentiment_down_english_ones_do_not():
    # given: "indignado" means nothing to VADER; in Spanish it is an anger term
    # when
    spanish = sentiment_of("Estoy indignado", "es")
    english = sentiment_of("Estoy indignado", "en")
    # then
    assert spanish == (-0.25, 0.2, ("indignado",))
    assert english == (0.0, 0.0, ())


@pytest.mark.django_db
def test_shouting_and_exclamations_add_anger():
    # given: no anger term and nothing VADER scores negative
    quiet = "where is my order"
    # when
    shouted = sentiment_of("WHERE IS MY ORDER", "en")
    exclaimed = sentiment_of("where is my order!!", "en")
    # then
    assert sentiment_of(quiet, "en") == (0.0, 0.0, ())
    assert shouted == (0.0, 0.1, ())
    assert exclaimed[1] == 0.1


@pytest.mark.django_db
def test_anger_is_capped_at_one_and_sentiment_at_minus_one():
    # given: six anger terms in Portuguese
    text = "Furioso, indignado, inaceitável, vergonha, golpe, absurdo!!"
    # when
    sentiment, anger, terms = sentiment_of(text, "pt-br")
    # then
    assert len(terms) == 6
    assert anger == 1.0
    assert sentiment == -1.0


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_has_no_feeling(text):
    # when
    feeling = sentiment_of(text, "en")
    result = triage(text=text, language="en")
    # then
    assert feeling == (None, None, ())
    assert (result.incident_type, result.inferred, result.sentiment, result.anger) == ("other", False, None, None)


def test_sentiment_reads_no_network(monkeypatch):
    # given: a fresh analyzer, and no socket can be opened
    triage_module._analyzer.cache_clear()

    def refuse(*args, **kwargs):
        raise AssertionError("triage opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # when
    sentiment, anger, terms = sentiment_of("I love it 😍", "en", rules=[])
    # then
    assert sentiment > 0.5
    assert (anger, terms) == (0.0, ())
