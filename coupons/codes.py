"""Codes as values: generation, normalisation, the keyed hash, encryption at rest.

A code's plaintext exists in three places only: in memory while it is generated or
looked up, encrypted in `Code.ciphertext` (for delivery), and in the customer's
hands. Everything else (the admin, logs, task arguments, errors) uses `last4`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

# No 0/O, 1/I/L, U: nothing a customer can misread or mishear.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP = 4
MAX_CODE_LENGTH = 64

_SEPARATORS = re.compile(r"[\s\-]+")
NORMALISED_CODE = re.compile(r"^[A-Z0-9]+$")


def code_length(entropy_bits: int) -> int:
    """Characters needed for at least `entropy_bits` of entropy (80 bits: 17)."""
    return math.ceil(entropy_bits / math.log2(len(ALPHABET)))


def normalise(raw: str) -> str:
    """What look-ups compare: case, spaces and dashes do not matter."""
    return _SEPARATORS.sub("", raw).upper()


def format_for_reading(normalised: str, *, prefix: str = "") -> str:
    """`SORRY-ABCD-EFGH-JKMN-PQRS-T`: groups of four, read aloud one at a time."""
    body = normalised[len(prefix) :] if prefix and normalised.startswith(prefix) else normalised
    groups = [body[i : i + GROUP] for i in range(0, len(body), GROUP)]
    return "-".join([prefix, *groups] if prefix else groups)


def generate(*, prefix: str = "", entropy_bits: int | None = None) -> str:
    """A new random code, normalised. Uniform over ALPHABET**length (CSPRNG)."""
    length = code_length(entropy_bits or settings.CODE_ENTROPY_BITS)
    number = secrets.randbelow(len(ALPHABET) ** length)
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return prefix + "".join(chars)


def lookup_hash(normalised: str) -> bytes:
    """HMAC-SHA256 of the normalised code under the server's code-hash key."""
    return hmac.new(settings.CODE_HASH_KEY.encode(), normalised.encode(), hashlib.sha256).digest()


@cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _cipher(tuple(settings.CODE_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    return _cipher(tuple(settings.CODE_ENCRYPTION_KEYS)).decrypt(ciphertext.encode()).decode()


def last4(normalised: str) -> str:
    return normalised[-4:]


def masked(last_four: str) -> str:
    """How a code is shown anywhere but to its customer: `••••-PQRS`."""
    return f"••••-{last_four}"
