"""SMS segment counting and fitting a message into a segment budget."""

from __future__ import annotations

import random

import pytest

from appease.delivery.channels.sms import ELLIPSIS, GSM_SEPTETS, SEPARATOR, SmsSegments, fit_sms, segments

# 3GPP TS 23.038 section 6.2.1, written out here independently of the library the table
# is built from: the default alphabet (less 0x1B, the escape) and its extension table.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\x0c^{}\\[~]|€"


# --- the alphabet ----------------------------------------------------------------------


def test_the_gsm_table_is_exactly_the_default_alphabet_and_its_extension():
    assert len(GSM_BASIC) == 127
    assert {**dict.fromkeys(GSM_BASIC, 1), **dict.fromkeys(GSM_EXTENSION, 2)} == GSM_SEPTETS


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_an_extension_character_counts_two_septets(char):
    assert segments(char) == SmsSegments("GSM-7", 2, 1)
    assert segments("a" + char * 3) == SmsSegments("GSM-7", 7, 1)


@pytest.mark.parametrize("char", ["é", "ñ", "ü", "Ñ", "ö", "à", "ò", "¿", "¡", "Ç"])
def test_these_accented_letters_are_in_gsm_7(char):
    assert segments(f"Canjéalo hoy {char}").encoding == "GSM-7"


@pytest.mark.parametrize("char", ["ã", "õ", "á", "í", "ó", "ú", "ê", "ç", "â", "`", "’", "…", "\x1b", "😀"])
def test_one_character_outside_it_switches_the_whole_message_to_ucs_2(char):
    assert segments(f"Sorry about your order {char}").encoding == "UCS-2"


def test_an_empty_text_is_no_segment():
    assert segments("") == SmsSegments("GSM-7", 0, 0)


# --- boundaries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_7_is_160_septets_in_one_and_153_per_part_after(length, expected):
    assert segments("a" * length) == SmsSegments("GSM-7", length, expected)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs_2_is_70_characters_in_one_and_67_per_part_after(length, expected):
    assert segments("ã" * length) == SmsSegments("UCS-2", length, expected)


def test_extension_characters_fill_a_segment_twice_as_fast():
    assert segments("€" * 80) == SmsSegments("GSM-7", 160, 1)
    assert segments("€" * 80 + "a") == SmsSegments("GSM-7", 161, 2)
    assert segments("a" * 159 + "€") == SmsSegments("GSM-7", 161, 2)


def test_an_escape_sequence_is_not_split_across_two_parts():
    # 152 + 2 + 152 = 306 septets, two parts by arithmetic; but the euro sign cannot
    # straddle parts 1 and 2, so part 1 carries 152 and the last septet needs a third.
    assert segments("a" * 152 + "€" + "a" * 152) == SmsSegments("GSM-7", 306, 3)
    assert segments("a" * 153 + "€" + "a" * 151) == SmsSegments("GSM-7", 306, 2)


def test_a_character_outside_the_bmp_takes_two_units_and_is_not_split():
    assert segments("😀") == SmsSegments("UCS-2", 2, 1)
    assert segments("😀" * 35) == SmsSegments("UCS-2", 70, 1)
    assert segments("a" * 66 + "😀" + "a" * 66) == SmsSegments("UCS-2", 134, 3)
    assert segments("a" * 67 + "😀" + "a" * 65) == SmsSegments("UCS-2", 134, 2)


def test_newlines_count_one_septet():
    assert segments("a\nb\r\nc") == SmsSegments("GSM-7", 6, 1)


# --- fit_sms -----------------------------------------------------------------------------

CODE = "ABCD-EFGH-JKLM-NPQR-S"

SPANISH = [
    "Hola María, lamentamos muchísimo que tu pedido llegara tarde y incompleto: entendemos "
    "lo frustrante que es esperar un regalo que no llega a tiempo y queremos compensarte.",
    "Te regalamos una tarjeta de 25 € para tu próxima compra en cualquiera de nuestras tiendas.",
    f"Tu código: {CODE}",
    "Válido hasta el 31/12/2026.",
    "Canjéalo en la web o en tienda: https://shop.example.com/canjear",
]

PORTUGUESE = [
    "Olá João, pedimos desculpas pela demora na entrega do seu pedido. Sabemos que não é "
    "fácil esperar e queremos compensar a sua paciência com um presente especial.",
    "Um vale-presente de R$ 50,00 para a sua próxima compra.",
    f"Seu código: {CODE}",
    "Válido até 31/12/2026.",
    "Resgate em https://shop.example.com/resgatar",
]


def test_a_message_that_fits_is_the_parts_joined_by_newlines():
    parts = ["Sorry!", f"Code: {CODE}", "Valid until 31 Dec."]

    assert fit_sms(parts, CODE, 1) == f"Sorry!\nCode: {CODE}\nValid until 31 Dec."


def test_empty_parts_are_skipped():
    assert fit_sms(["Sorry!", "", f"Code: {CODE}", "  "], CODE, 1) == f"Sorry!\nCode: {CODE}"


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_spanish_is_fitted_without_cutting_the_code(max_segments):
    # given a text that needs more than three segments (the acute á/í/ó/ú make it UCS-2)
    assert segments(SEPARATOR.join(SPANISH)).segments > 3
    assert segments(SEPARATOR.join(SPANISH)).encoding == "UCS-2"

    # when
    sms = fit_sms(SPANISH, CODE, max_segments)

    # then
    assert segments(sms).segments <= max_segments
    assert f"Tu código: {CODE}" in sms.split(SEPARATOR)


def test_by_default_the_apology_gives_way_before_the_facts_after_it():
    # when
    sms = fit_sms(SPANISH, CODE, 2)

    # then
    assert sms.split(SEPARATOR) == SPANISH[2:]


def test_a_part_dropped_early_comes_back_if_it_fits_beside_what_is_left():
    # given a budget where the redemption link (last) must go, but the expiry fits
    # when
    sms = fit_sms(SPANISH, CODE, 1)

    # then
    assert sms.split(SEPARATOR) == [f"Tu código: {CODE}", "Válido hasta el 31/12/2026."]


def test_the_part_that_made_room_is_cut_to_the_longest_that_fits():
    # when
    sms = fit_sms(SPANISH, CODE, 3)

    # then the apology went, the gift description was cut at a word, the rest is whole
    gift, *rest = sms.split(SEPARATOR)
    assert rest == SPANISH[2:]
    assert gift.endswith(ELLIPSIS)
    assert SPANISH[1].startswith(gift.removesuffix(ELLIPSIS) + " ")
    assert segments(sms).segments == 3
    assert segments(gift + "x" * 5 + SEPARATOR + SEPARATOR.join(rest)).segments == 4  # no room was wasted


@pytest.mark.parametrize("max_segments", [1, 2])
def test_portuguese_with_a_tilde_is_fitted_without_cutting_the_code(max_segments):
    sms = fit_sms(PORTUGUESE, CODE, max_segments)

    assert segments(sms).segments <= max_segments
    assert f"Seu código: {CODE}" in sms.split(SEPARATOR)


def test_dropping_the_only_ucs_2_part_brings_back_gsm_7():
    # given one short part with "ã" in a message that is otherwise GSM-7
    parts = ["Sorry about the delay with your order, we really are.", f"Code: {CODE}", "Obrigado, João e irmãs!"]
    assert segments(SEPARATOR.join(parts)) == SmsSegments("UCS-2", 105, 2)

    # when the thanks may go first
    sms = fit_sms(parts, CODE, 1, shorten_order=[2, 0])

    # then it went, and the rest fits in one GSM-7 segment, whole
    assert sms == f"{parts[0]}\nCode: {CODE}"
    assert segments(sms).encoding == "GSM-7"


def test_a_shortened_part_is_cut_at_a_word_boundary_with_an_ellipsis():
    # given
    apology = "We are truly sorry that your parcel arrived late and damaged, " * 4
    parts = [apology.strip(), f"Code: {CODE}"]

    # when
    sms = fit_sms(parts, CODE, 1)

    # then
    first, code_line = sms.split(SEPARATOR)
    assert code_line == f"Code: {CODE}"
    assert first.endswith(ELLIPSIS)
    kept = first.removesuffix(ELLIPSIS)
    assert apology.startswith(kept)
    assert apology[len(kept)] in " ,"  # the cut is between words
    assert segments(sms).segments == 1
    assert len(sms) >= 150  # and it keeps as much as fits


def test_a_part_with_a_link_is_kept_whole_or_dropped_never_cut():
    # given a redemption hint that only fits in part, and whose link would be cut
    hint = "Redeem it online or in any of our stores: https://shop.example.com/redeem?campaign=appease-2026-recovery&lang=en&utm_source=sms&utm_medium=appease"
    parts = [f"Code: {CODE}", hint]
    assert segments(SEPARATOR.join(parts)).segments == 2

    # when
    fitted = fit_sms(parts, CODE, 1)
    roomy = fit_sms(parts, CODE, 2)

    # then
    assert fitted == f"Code: {CODE}"
    assert roomy == f"Code: {CODE}\n{hint}"


def test_shorten_order_chooses_which_parts_give_way_and_protects_the_rest():
    # given the redemption URL must stay, the apology may go
    url = "https://shop.example.com/r/ABCD"
    parts = ["We are very sorry about your order. " * 5, f"Code: {CODE}", url]

    # when
    sms = fit_sms(parts, CODE, 1, shorten_order=[0])

    # then
    assert sms.split(SEPARATOR)[-2:] == [f"Code: {CODE}", url]
    assert segments(sms).segments == 1


def test_a_code_line_too_long_for_the_budget_alone_is_still_whole():
    # given a code line that alone needs two segments
    code_line = "Your gift card code is " + "X" * 150
    code = "X" * 150

    # when
    sms = fit_sms(["Sorry!", code_line, "Valid for a year."], code, 1)

    # then everything else went, and the code line is intact (over budget: never cut)
    assert sms == code_line
    assert segments(sms).segments == 2


def test_no_code_means_every_part_may_give_way():
    sms = fit_sms(["Sorry about your order. " * 20, "Thanks for your patience."], None, 1)

    assert segments(sms).segments == 1


def test_fit_sms_refuses_a_code_that_is_in_no_part():
    with pytest.raises(ValueError, match="code"):
        fit_sms(["Sorry!", "Code: ABCD"], "WXYZ", 1)


@pytest.mark.parametrize(("code", "max_segments", "order"), [("", 1, None), (None, 0, None), (None, 1, [5])])
def test_fit_sms_refuses_bad_arguments(code, max_segments, order):
    with pytest.raises(ValueError):
        fit_sms(["Sorry!"], code, max_segments, shorten_order=order)


def test_fit_sms_never_cuts_the_code_on_random_inputs():
    # given many random mixes of languages, lengths and budgets
    rng = random.Random(20261122)
    words = " ".join([*SPANISH[:2], *PORTUGUESE[:2], "{promo} ~ €"]).split()  # é ñ € { ~, and ã
    for _ in range(300):
        code = "".join(rng.choice("ABCDEFGHJKMNPQRSTVWXYZ23456789") for _ in range(17))
        parts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 60))) for _ in range(4)]
        code_line = f"Código: {code}"
        parts.insert(rng.randint(0, 4), code_line)
        max_segments = rng.randint(1, 4)

        # when
        sms = fit_sms(parts, code, max_segments)

        # then
        assert code_line in sms.split(SEPARATOR)
        assert segments(sms).segments <= max_segments
