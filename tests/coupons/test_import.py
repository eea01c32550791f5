"""Importing a provider's codes: all or nothing, every refusal with its line number."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from coupons import codes
from coupons.models import Code, CodeBatch, Offer
from coupons.services.inventory import code_batch_import
from tests.factories import gift_card_offer_create, offer_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer() -> Offer:
    return offer_create(generate_on_demand=False)


@pytest.fixture
def gift_card() -> Offer:
    return gift_card_offer_create(generate_on_demand=False)


def import_errors(offer: Offer, text: str) -> list[str]:
    """The messages of a refused import; fails the test when the import is accepted."""
    with pytest.raises(ValidationError) as caught:
        code_batch_import(offer=offer, text=text)
    return caught.value.message_dict["file"]


def assert_nothing_written(codes_before: int = 0, batches_before: int = 0) -> None:
    assert Code.objects.count() == codes_before
    assert CodeBatch.objects.count() == batches_before


# --- accepted files --------------------------------------------------------------------


def test_a_good_file_becomes_one_done_batch_of_available_codes(offer):
    # given
    text = "AAAA-BBBB-CCCC\nDDDD-EEEE-FFFF\nGGGG-HHHH-JJJJ\n"
    # when
    batch = code_batch_import(offer=offer, text=text, filename="provider.csv")
    # then
    assert batch.source == CodeBatch.Source.IMPORTED
    assert batch.status == CodeBatch.Status.DONE
    assert batch.quantity == 3
    assert batch.filename == "provider.csv"
    stored = Code.objects.filter(batch=batch)
    assert stored.count() == 3
    assert set(stored.values_list("status", flat=True)) == {Code.Status.AVAILABLE}
    assert set(stored.values_list("currency", flat=True)) == {"USD"}
    assert set(stored.values_list("balance_amount", flat=True)) == {None}
    assert sorted(stored.values_list("last4", flat=True)) == ["CCCC", "FFFF", "JJJJ"]


def test_a_header_line_is_skipped(offer):
    # when
    batch = code_batch_import(offer=offer, text="Code\nAAAA-BBBB\nCCCC-DDDD\n")
    # then
    assert batch.quantity == 2
    assert not Code.objects.filter(lookup_hash=codes.lookup_hash("CODE")).exists()


def test_blank_lines_and_windows_line_ends_are_fine(offer):
    # when
    batch = code_batch_import(offer=offer, text="AAAA-BBBB\r\n\r\n   \r\nCCCC-DDDD\r\n")
    # then
    assert batch.quantity == 2


def test_gift_card_balances_come_from_the_second_column_or_the_face_value(gift_card):
    # given: the offer's face value is 50.00
    text = "code,balance\nAAAA-BBBB,25.50\nCCCC-DDDD\nEEEE-FFFF, \n"
    # when
    code_batch_import(offer=gift_card, text=text)
    # then
    by_last4 = {code.last4: code for code in Code.objects.all()}
    assert by_last4["BBBB"].balance_amount == Decimal("25.50")
    assert by_last4["BBBB"].initial_balance_amount == Decimal("25.50")
    assert by_last4["DDDD"].balance_amount == Decimal("50.00")
    assert by_last4["FFFF"].balance_amount == Decimal("50.00")


def test_a_code_of_64_characters_is_accepted(offer):
    # when
    batch = code_batch_import(offer=offer, text="A" * 64 + "\n")
    # then
    assert batch.quantity == 1


# --- refused files: all or nothing, with line numbers ----------------------------------


def test_a_duplicate_within_the_file_names_the_earlier_line(offer):
    # given: the same code, written differently, on lines 2 and 4
    text = "code\nAAAA-BBBB\nCCCC-DDDD\naaaa bbbb\n"
    # when
    errors = import_errors(offer, text)
    # then
    assert errors == ["line 4: duplicate of line 2 in this file"]
    assert_nothing_written()


def test_a_code_already_in_the_inventory_is_refused_with_its_line(offer):
    # given
    code_batch_import(offer=offer, text="AAAA-BBBB\n")
    # when: one new code, then one already stored (in another offer's words)
    errors = import_errors(offer, "CCCC-DDDD\naaaa-bbbb\n")
    # then
    assert errors == ["line 2: this code is already in the inventory"]
    assert_nothing_written(codes_before=1, batches_before=1)


def test_a_code_in_another_offers_inventory_is_a_duplicate_too(offer):
    # given
    code_batch_import(offer=offer_create(generate_on_demand=False), text="AAAA-BBBB\n")
    # when
    errors = import_errors(offer, "AAAA-BBBB\n")
    # then
    assert errors == ["line 1: this code is already in the inventory"]
    assert_nothing_written(codes_before=1, batches_before=1)


@pytest.mark.parametrize(
    "bad",
    ["AB!C-DEFG", "ÄBCD-EFGH", "ABCD_EFGH", "A" * 65, "ABCD.EFGH"],
    ids=["punctuation", "non-ascii", "underscore", "65-characters", "dot"],
)
def test_a_malformed_code_is_refused(offer, bad):
    # when
    errors = import_errors(offer, f"AAAA-BBBB\n{bad}\nCCCC-DDDD\n")
    # then
    assert errors == ["line 2: a code is 1 to 64 letters and digits"]
    assert_nothing_written()


def test_an_empty_code_cell_is_refused(gift_card):
    # when
    errors = import_errors(gift_card, "AAAA-BBBB\n,10\n")
    # then
    assert errors == ["line 2: the code is empty"]
    assert_nothing_written()


@pytest.mark.parametrize(
    ("balance", "message"),
    [
        ("ten", "the balance 'ten' is not a number"),
        ("-5", "the balance must be above zero with at most the decimals of USD"),
        ("0", "the balance must be above zero with at most the decimals of USD"),
        ("10.001", "the balance must be above zero with at most the decimals of USD"),
        ("NaN", "the balance must be above zero with at most the decimals of USD"),
        ("Infinity", "the balance must be above zero with at most the decimals of USD"),
    ],
)
def test_a_bad_balance_is_refused(gift_card, balance, message):
    # when
    errors = import_errors(gift_card, f"code,balance\nAAAA-BBBB,10\nCCCC-DDDD,{balance}\n")
    # then
    assert errors == [f"line 3: {message}"]
    assert_nothing_written()


def test_a_balance_with_decimals_is_refused_for_a_currency_without_minor_units():
    # given
    yen = gift_card_offer_create(currency="JPY", value_amount=Decimal("5000"), generate_on_demand=False)
    # when
    errors = import_errors(yen, "AAAA-BBBB,1000\nCCCC-DDDD,1000.50\n")
    # then
    assert errors == ["line 2: the balance must be above zero with at most the decimals of JPY"]
    assert_nothing_written()


def test_whole_yen_balances_are_accepted():
    # given
    yen = gift_card_offer_create(currency="JPY", value_amount=Decimal("5000"), generate_on_demand=False)
    # when
    code_batch_import(offer=yen, text="AAAA-BBBB,1000\nCCCC-DDDD,1000.00\n")
    # then
    assert set(Code.objects.values_list("balance_amount", flat=True)) == {Decimal("1000")}


def test_a_balance_too_large_to_store_is_refused(gift_card):
    # when: the balance column holds at most 10 digits before the decimal point
    errors = import_errors(gift_card, "AAAA-BBBB,10000000000\nCCCC-DDDD,1E+20\n")
    # then
    assert errors == [
        "line 1: the balance is more than 9,999,999,999",
        "line 2: the balance is more than 9,999,999,999",
    ]
    assert_nothing_written()


def test_a_thousands_separator_does_not_silently_split_the_balance(gift_card):
    # given: `1,000.00` unquoted is three cells: code, 1, 000.00
    text = "AAAA-BBBB,1,000.00\n"
    # when
    errors = import_errors(gift_card, text)
    # then
    assert errors == ["line 1: too many columns (a line is code or code,balance)"]
    assert_nothing_written()


def test_empty_trailing_cells_of_a_spreadsheet_export_are_fine(gift_card):
    # when
    code_batch_import(offer=gift_card, text="AAAA-BBBB,20,,\nCCCC-DDDD,,\n")
    # then
    assert sorted(Code.objects.values_list("balance_amount", flat=True)) == [Decimal("20.00"), Decimal("50.00")]


def test_a_balance_on_an_offer_without_balances_is_refused(offer):
    # when
    errors = import_errors(offer, "AAAA-BBBB\nCCCC-DDDD,10\n")
    # then
    assert errors == ["line 2: only gift-card codes carry a balance"]
    assert_nothing_written()


def test_every_bad_line_is_reported_in_file_order(offer):
    # given
    code_batch_import(offer=offer, text="ZZZZ-ZZZZ\n")
    text = "code\nAAAA-BBBB\nAB!C\nzzzz-zzzz\naaaa-bbbb\nCCCC,5\n"
    # when
    errors = import_errors(offer, text)
    # then
    assert errors == [
        "line 3: a code is 1 to 64 letters and digits",
        "line 4: this code is already in the inventory",
        "line 5: duplicate of line 2 in this file",
        "line 6: only gift-card codes carry a balance",
    ]
    assert_nothing_written(codes_before=1, batches_before=1)


def test_a_line_too_long_for_csv_is_a_refusal_not_a_crash(offer):
    # when
    errors = import_errors(offer, "AAAA-BBBB\n" + "A" * 200_000 + "\nCCCC-DDDD\n")
    # then
    assert len(errors) == 1
    assert errors[0].startswith("line 2: ")
    assert_nothing_written()


def test_the_number_of_reported_errors_is_capped(offer):
    # when
    errors = import_errors(offer, "AB!C\n" * 250)
    # then
    assert len(errors) == 201
    assert errors[0] == "line 1: a code is 1 to 64 letters and digits"
    assert errors[-1] == "… and 50 more errors"


def test_a_soft_offer_takes_no_codes():
    # given
    apology = offer_create(kind=Offer.Kind.APOLOGY, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    # when
    with pytest.raises(ValidationError) as caught:
        code_batch_import(offer=apology, text="AAAA-BBBB\n")
    # then
    assert "offer" in caught.value.message_dict
    assert_nothing_written()


@pytest.mark.parametrize("text", ["", "\n\n  \n", "code\n", "code,balance\n"])
def test_a_file_without_codes_is_refused(offer, text):
    # when
    errors = import_errors(offer, text)
    # then
    assert errors == ["line 1: the file has no codes"]
    assert_nothing_written()


# --- the admin upload ------------------------------------------------------------------


def upload(name: str, content: str, encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(encoding), content_type="text/csv")


def test_the_admin_imports_an_uploaded_file(admin_client, admin_user, gift_card):
    # when: a spreadsheet export, with a byte-order mark
    response = admin_client.post(
        f"/admin/coupons/offer/{gift_card.pk}/codes/",
        {"file": upload("provider.csv", "code,balance\nAAAA-BBBB,20\nCCCC-DDDD\n", "utf-8-sig")},
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == "/admin/coupons/codebatch/"
    batch = CodeBatch.objects.get()
    assert batch.quantity == 2
    assert batch.filename == "provider.csv"
    assert batch.created_by == admin_user
    assert Code.objects.filter(batch=batch, offer=gift_card).count() == 2


def test_the_admin_shows_every_bad_line_and_writes_nothing(admin_client, offer):
    # given
    code_batch_import(offer=offer, text="EEEE-FFFF\n")
    # when
    response = admin_client.post(
        f"/admin/coupons/offer/{offer.pk}/codes/",
        {"file": upload("bad.csv", "AAAA-BBBB\nAB!C\naaaa-bbbb\neeee-ffff\n")},
    )
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "line 2: a code is 1 to 64 letters and digits" in page
    assert "line 3: duplicate of line 1 in this file" in page
    assert "line 4: this code is already in the inventory" in page
    assert_nothing_written(codes_before=1, batches_before=1)


def test_the_admin_refuses_a_file_that_is_not_utf8(admin_client, offer):
    # when
    response = admin_client.post(
        f"/admin/coupons/offer/{offer.pk}/codes/", {"file": upload("codes.csv", "AAAA-BBBB\n", "utf-16")}
    )
    # then
    assert response.status_code == 200
    assert "The file must be UTF-8 text." in response.content.decode()
    assert_nothing_written()


def test_the_admin_refuses_codes_for_a_soft_offer(admin_client):
    # given
    callback = offer_create(kind=Offer.Kind.CALLBACK, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    # when
    response = admin_client.post(
        f"/admin/coupons/offer/{callback.pk}/codes/", {"file": upload("codes.csv", "AAAA-BBBB\n")}
    )
    # then
    assert response.status_code == 200
    assert "Soft offers (apology, callback) carry no codes." in response.content.decode()
    assert_nothing_written()


# --- the import_codes command ----------------------------------------------------------


def test_the_command_imports_a_file(tmp_path, capsys, gift_card):
    # given
    path = tmp_path / "provider.csv"
    path.write_text("\ufeffcode,balance\nAAAA-BBBB,20\nCCCC-DDDD\n", encoding="utf-8")
    # when
    call_command("import_codes", "--offer", str(gift_card.pk), str(path))
    # then
    batch = CodeBatch.objects.get()
    assert batch.quantity == 2
    assert batch.filename == "provider.csv"
    assert sorted(Code.objects.values_list("balance_amount", flat=True)) == [Decimal("20.00"), Decimal("50.00")]
    assert f"Imported 2 codes for “{gift_card.name}” as batch {batch.pk}." in capsys.readouterr().out


def test_the_command_finds_the_offer_by_its_exact_name(tmp_path, offer):
    # given
    path = tmp_path / "codes.csv"
    path.write_text("AAAA-BBBB\n", encoding="utf-8")
    # when
    call_command("import_codes", "--offer", offer.name, str(path))
    # then
    assert Code.objects.filter(offer=offer).count() == 1


def test_the_command_prints_every_bad_line_and_writes_nothing(tmp_path, capsys, offer):
    # given
    path = tmp_path / "bad.csv"
    path.write_text("AAAA-BBBB\nAB!C\naaaa-bbbb\n", encoding="utf-8")
    # when
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_codes", "--offer", str(offer.pk), str(path))
    # then
    err = capsys.readouterr().err
    assert "line 2: a code is 1 to 64 letters and digits" in err
    assert "line 3: duplicate of line 1 in this file" in err
    assert_nothing_written()


@pytest.mark.parametrize("offer_option", ["999999", "No such offer"])
def test_the_command_refuses_an_unknown_offer(tmp_path, offer_option):
    # given
    path = tmp_path / "codes.csv"
    path.write_text("AAAA-BBBB\n", encoding="utf-8")
    # when / then
    with pytest.raises(CommandError, match="No offer has the id or name"):
        call_command("import_codes", "--offer", offer_option, str(path))
    assert_nothing_written()


def test_the_command_refuses_a_missing_or_non_utf8_file(tmp_path, offer):
    # given
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("ÄAAA-BBBB\n".encode("latin-1"))
    # when / then
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_codes", "--offer", str(offer.pk), str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="is not UTF-8 text"):
        call_command("import_codes", "--offer", str(offer.pk), str(latin1))
    assert_nothing_written()


def test_the_command_refuses_a_soft_offer(tmp_path):
    # given
    apology = offer_create(kind=Offer.Kind.APOLOGY, value_amount=Decimal("0"), cost_amount=Decimal("0"))
    path = tmp_path / "codes.csv"
    path.write_text("AAAA-BBBB\n", encoding="utf-8")
    # when / then
    with pytest.raises(CommandError, match=r"Soft offers \(apology, callback\) carry no codes."):
        call_command("import_codes", "--offer", str(apology.pk), str(path))
    assert_nothing_written()
