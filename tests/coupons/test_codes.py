"""Codes as values (format, normalisation, keyed hash, encryption) and codes at rest."""

import re

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.db import connection

from coupons import codes
from coupons.models import Code
from coupons.services.inventory import code_batch_import
from tests.factories import issued_code, offer_create

AMBIGUOUS = set("0O1ILU")
GROUPED = re.compile(
    r"^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}){3}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]$"
)


# --- generation ------------------------------------------------------------------------


def test_80_bits_need_17_characters_of_the_30_character_alphabet():
    # given
    assert len(codes.ALPHABET) == 30
    # when
    length = codes.code_length(80)
    # then: 30**17 is about 2**83.4, 30**16 only 2**78.5
    assert length == 17
    assert len(codes.ALPHABET) ** 17 >= 2**80 > len(codes.ALPHABET) ** 16


def test_a_generated_code_reads_in_groups_of_four(settings):
    # given
    settings.CODE_ENTROPY_BITS = 80
    # when
    normalised = codes.generate()
    shown = codes.format_for_reading(normalised)
    # then
    assert len(normalised) == 17
    assert GROUPED.match(shown), shown
    assert codes.normalise(shown) == normalised


@pytest.mark.django_db
def test_an_issued_code_carries_the_offer_prefix_before_the_groups():
    # given
    offer = offer_create(code_prefix="SORRY")
    # when
    issued = issued_code(offer)
    # then
    assert issued.plaintext.startswith("SORRY-")
    assert GROUPED.match(issued.plaintext.removeprefix("SORRY-")), issued.plaintext
    assert len(codes.normalise(issued.plaintext)) == len("SORRY") + 17


def test_generated_codes_never_contain_an_ambiguous_character():
    # when
    generated = [codes.generate() for _ in range(3000)]
    # then
    used = set("".join(generated))
    assert not used & AMBIGUOUS
    # and every character of the alphabet turns up: the draw is not skewed to a subset
    assert used == set(codes.ALPHABET)
    assert len(set(generated)) == len(generated)


# --- normalisation and the keyed hash --------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "SORRY-ABCD-EFGH-JKMN-PQRS-T",
        "sorry-abcd-efgh-jkmn-pqrs-t",
        " sorry abcd efgh jkmn pqrs t ",
        "SORRY--ABCD\tEFGHJKMN-PQRST",
    ],
)
def test_case_spaces_and_dashes_do_not_matter(typed):
    # when
    normalised = codes.normalise(typed)
    # then
    assert normalised == "SORRYABCDEFGHJKMNPQRST"
    assert codes.lookup_hash(normalised) == codes.lookup_hash("SORRYABCDEFGHJKMNPQRST")


def test_the_lookup_hash_is_deterministic_and_keyed(settings):
    # given
    settings.CODE_HASH_KEY = "key-one"
    first = codes.lookup_hash("ABCDEFGH")
    again = codes.lookup_hash("ABCDEFGH")
    # when
    settings.CODE_HASH_KEY = "key-two"
    other_key = codes.lookup_hash("ABCDEFGH")
    # then
    assert first == again
    assert len(first) == 32
    assert other_key != first
    assert codes.lookup_hash("ABCDEFGJ") != other_key


# --- encryption at rest ----------------------------------------------------------------


def test_encryption_round_trips_and_is_not_the_plaintext():
    # when
    ciphertext = codes.encrypt("SORRY-ABCD-EFGH")
    # then
    assert "ABCD" not in ciphertext
    assert ciphertext != codes.encrypt("SORRY-ABCD-EFGH")  # a fresh IV every time
    assert codes.decrypt(ciphertext) == "SORRY-ABCD-EFGH"


def test_a_rotated_key_list_still_decrypts_old_ciphertexts(settings):
    # given
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CODE_ENCRYPTION_KEYS = [old]
    old_ciphertext = codes.encrypt("ABCD-EFGH")
    # when: the new key is put first, the old one kept to decrypt
    settings.CODE_ENCRYPTION_KEYS = [new, old]
    new_ciphertext = codes.encrypt("JKMN-PQRS")
    # then
    assert codes.decrypt(old_ciphertext) == "ABCD-EFGH"
    assert codes.decrypt(new_ciphertext) == "JKMN-PQRS"
    # and the new key really encrypts: without it, the new ciphertext is unreadable
    settings.CODE_ENCRYPTION_KEYS = [old]
    with pytest.raises(InvalidToken):
        codes.decrypt(new_ciphertext)


@pytest.mark.django_db
def test_the_database_never_holds_the_plaintext():
    # given
    issued = issued_code(offer_create(code_prefix="SORRY"))
    normalised = codes.normalise(issued.plaintext)
    body = normalised.removeprefix("SORRY")
    # when
    code = Code.objects.get(pk=issued.code.pk)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Code._meta.db_table} WHERE id = %s", [code.pk])  # noqa: S608
        raw_row = cursor.fetchone()
    # then
    assert code.last4 == normalised[-4:]
    assert body not in code.ciphertext and issued.plaintext not in code.ciphertext
    assert body.encode() not in bytes(code.lookup_hash)
    for column in raw_row:
        value = bytes(column) if isinstance(column, memoryview) else column
        if isinstance(value, bytes):
            assert body.encode() not in value
        else:
            assert body not in str(value)
    assert codes.decrypt(code.ciphertext) == issued.plaintext


# --- the admin knows only the last four ------------------------------------------------


@pytest.mark.django_db
def test_the_code_list_shows_only_the_masked_last_four(admin_client):
    # given
    issued = issued_code(offer_create(code_prefix="SORRY"))
    normalised = codes.normalise(issued.plaintext)
    # when
    response = admin_client.get("/admin/coupons/code/")
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert f"••••-{normalised[-4:]}" in page
    assert issued.plaintext not in page
    assert normalised not in page
    assert normalised[-8:] not in page  # not even a longer tail


@pytest.mark.django_db
def test_admin_search_by_a_whole_code_finds_exactly_that_code(admin_client):
    # given
    offer = offer_create()
    wanted = issued_code(offer)
    others = [issued_code(offer) for _ in range(3)]
    typed = wanted.plaintext.lower().replace("-", " ")
    # when
    response = admin_client.get("/admin/coupons/code/", {"q": typed})
    # then
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted.code]
    page = response.content.decode()
    assert codes.masked(wanted.code.last4) in page
    for other in others:
        assert codes.masked(other.code.last4) not in page


@pytest.mark.django_db
def test_admin_search_by_a_whole_unknown_code_finds_nothing(admin_client):
    # given
    issued_code()
    # when
    response = admin_client.get("/admin/coupons/code/", {"q": "ABCD-EFGH-JKMN-PQRS-T"})
    # then
    assert list(response.context["cl"].result_list) == []


@pytest.mark.django_db
def test_admin_search_by_the_last_four_finds_the_code(admin_client):
    # given
    issued = issued_code()
    # when
    response = admin_client.get("/admin/coupons/code/", {"q": issued.code.last4.lower()})
    # then
    assert issued.code in list(response.context["cl"].result_list)


@pytest.mark.django_db
def test_a_code_cannot_be_edited_added_or_deleted_in_the_admin(admin_client):
    # given
    issued = issued_code()
    change_url = f"/admin/coupons/code/{issued.code.pk}/change/"
    # when
    page = admin_client.get(change_url)
    post = admin_client.post(change_url, {"status": Code.Status.AVAILABLE})
    add = admin_client.get("/admin/coupons/code/add/")
    delete = admin_client.post(f"/admin/coupons/code/{issued.code.pk}/delete/", {"post": "yes"})
    # then
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert "<select" not in html
    assert issued.plaintext not in html
    assert post.status_code == 403
    assert add.status_code == 403
    assert delete.status_code == 403
    issued.code.refresh_from_db()
    assert issued.code.status == Code.Status.ISSUED


@pytest.mark.django_db
def test_an_imported_code_is_stored_like_a_generated_one():
    # given
    offer = offer_create(generate_on_demand=False)
    # when
    code_batch_import(offer=offer, text="abcd-efgh-jkmn\n")
    # then
    code = Code.objects.get()
    assert code.last4 == "JKMN"
    assert bytes(code.lookup_hash) == codes.lookup_hash("ABCDEFGHJKMN")
    assert "EFGH" not in code.ciphertext
    assert codes.decrypt(code.ciphertext) == "abcd-efgh-jkmn"  # delivered as the provider wrote it
