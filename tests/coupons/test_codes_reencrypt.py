"""`manage.py codes_reencrypt`: retiring an old code-encryption key (coupons/services/keys.py)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from coupons import codes
from coupons.models import Code
from coupons.services.inventory import code_batch_generate, code_batch_request
from tests.factories import issued_code, offer_create

pytestmark = pytest.mark.django_db

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


@pytest.fixture
def codes_under_the_old_key(settings):
    """Seven codes, five available and two issued, encrypted under OLD; their plaintexts by id."""
    settings.CODE_ENCRYPTION_KEYS = [OLD]
    batch = code_batch_request(offer=offer_create(), quantity=5)
    code_batch_generate(batch_id=batch.pk)
    issued_code()
    issued_code()
    return {pk: codes.decrypt(ciphertext) for pk, ciphertext in Code.objects.values_list("pk", "ciphertext")}


def run(**options) -> str:
    from io import StringIO

    out = StringIO()
    call_command("codes_reencrypt", stdout=out, **options)
    return out.getvalue()


def test_after_reencryption_the_old_key_can_be_removed(settings, codes_under_the_old_key):
    # given a new key put first, the old one still after it
    assert len(codes_under_the_old_key) == 7
    hashes = dict(Code.objects.values_list("pk", "lookup_hash"))
    settings.CODE_ENCRYPTION_KEYS = [NEW, OLD]

    # when the command runs, three codes per transaction
    output = run(batch_size=3)

    # then every code was rewritten
    assert "7 codes re-encrypted under the newest key, 0 already were." in output
    # and with the old key removed, every code still opens, to the same plaintext
    settings.CODE_ENCRYPTION_KEYS = [NEW]
    for pk, ciphertext in Code.objects.values_list("pk", "ciphertext"):
        assert codes.decrypt(ciphertext) == codes_under_the_old_key[pk]
    # and look-ups are untouched (the hash key is another key)
    assert dict(Code.objects.values_list("pk", "lookup_hash")) == hashes
    # and the old key alone opens none of them any more
    old = Fernet(OLD)
    for ciphertext in Code.objects.values_list("ciphertext", flat=True):
        with pytest.raises(InvalidToken):
            old.decrypt(ciphertext.encode())


def test_a_second_run_rewrites_nothing(settings, codes_under_the_old_key):
    settings.CODE_ENCRYPTION_KEYS = [NEW, OLD]
    run()
    before = dict(Code.objects.values_list("pk", "ciphertext"))

    output = run(batch_size=2)

    assert "0 codes re-encrypted under the newest key, 7 already were." in output
    assert dict(Code.objects.values_list("pk", "ciphertext")) == before


def test_a_code_no_key_opens_is_reported_and_the_others_still_rotate(settings, codes_under_the_old_key):
    # given one code encrypted under a key nobody has any more
    lost = Code.objects.order_by("pk").first()
    Code.objects.filter(pk=lost.pk).update(ciphertext=Fernet(LOST).encrypt(b"GONE").decode())
    settings.CODE_ENCRYPTION_KEYS = [NEW, OLD]

    # when the command runs
    with pytest.raises(CommandError, match=rf"1 codes open with none of CODE_ENCRYPTION_KEYS \(ids {lost.pk}\)"):
        run(batch_size=4)

    # then the six others are under the new key, and the lost one is as it was
    settings.CODE_ENCRYPTION_KEYS = [NEW]
    for pk, ciphertext in Code.objects.exclude(pk=lost.pk).values_list("pk", "ciphertext"):
        assert codes.decrypt(ciphertext) == codes_under_the_old_key[pk]


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(CommandError, match="--batch-size"):
        run(batch_size=0)
