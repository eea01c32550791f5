"""SMS: segment counting (GSM 03.38 / UCS-2), fitting a message into a segment budget
without ever cutting the code, and an adapter for Twilio-compatible REST providers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import gsm0338
import httpx
from django.conf import settings

from appease.delivery.channels import _http
from appease.delivery.channels.base import (
    INVALID_ADDRESS,
    OPTED_OUT,
    REJECTED,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"
# Capacity of one SMS, and of each part of a concatenated one (its user data header
# takes 6 octets: 7 septets, or 3 UCS-2 characters).
SINGLE_SEGMENT = {GSM_7: 160, UCS_2: 70}
CONCATENATED_SEGMENT = {GSM_7: 153, UCS_2: 67}


def _gsm_septets() -> dict[str, int]:
    """Every character of the GSM 03.38 default alphabet -> septets it takes: 1 for the
    basic table, 2 for the extension table (an escape septet, then the character)."""
    codec = gsm0338.Codec()
    table: dict[str, int] = {}
    for septet in range(0x80):
        if septet == 0x1B:  # the escape to the extension table, not a character
            continue
        table[codec.decode(bytes([septet]))[0]] = 1
    for septet in range(0x80):
        try:
            char = codec.decode(bytes([0x1B, septet]))[0]
        except UnicodeDecodeError:
            continue
        table.setdefault(char, 2)
    return table


GSM_SEPTETS = _gsm_septets()


@dataclass(frozen=True)
class SmsSegments:
    encoding: str  # "GSM-7" | "UCS-2"
    characters: int  # septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2
    segments: int  # SMS billed; 0 for an empty text


def segments(text: str) -> SmsSegments:
    """How `text` is sent: GSM-7 if every character is in the GSM 03.38 default
    alphabet or its extension table, else UCS-2 (UTF-16 in practice: a character outside
    the Basic Multilingual Plane, such as most emoji, takes two units).

    A concatenated message is split into parts of 153 septets / 67 units, and an escape
    sequence or a surrogate pair is never split across two parts, so a part may carry one
    unit less: this counts that too.
    """
    costs = [GSM_SEPTETS.get(char) for char in text]
    if None in costs:
        encoding = UCS_2
        units = [2 if ord(char) > 0xFFFF else 1 for char in text]
    else:
        encoding = GSM_7
        units = costs
    total = sum(units)
    if total == 0:
        return SmsSegments(encoding, 0, 0)
    if total <= SINGLE_SEGMENT[encoding]:
        return SmsSegments(encoding, total, 1)
    capacity = CONCATENATED_SEGMENT[encoding]
    count, used = 1, 0
    for unit in units:
        if used + unit > capacity:
            count, used = count + 1, 0
        used += unit
    return SmsSegments(encoding, total, count)


SEPARATOR = "\n"
ELLIPSIS = "..."  # three GSM-7 full stops: "…" would switch the whole message to UCS-2
MIN_SHORTENED = 12  # a free-text part cut shorter than this is dropped instead
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)  # a part with a link is kept whole or dropped


def fit_sms(
    parts: list[str],
    code: str | None,
    max_segments: int,
    *,
    shorten_order: Sequence[int] | None = None,
) -> str:
    """Join `parts` (in display order: apology, gift description, code line, expiry, how
    to redeem, ...) with newlines into an SMS of at most `max_segments` segments.

    The part that contains `code` is never changed. When the message is too long, the
    other parts give way in `shorten_order` (indexes into `parts`; by default display
    order, so the apology that opens the message goes before the facts after it): they
    are dropped in that order until the rest fits, then given back, the last dropped
    first, each as long as still fits: whole, or cut at a word boundary with "...". A part
    with a link is kept whole or dropped, never cut. Parts left out of `shorten_order` are
    never touched. If the untouchable parts alone are over the budget they are returned as
    they are: the code is never cut.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    texts = [part.strip() for part in parts]
    protected: int | None = None
    if code is not None:
        if not code:
            raise ValueError("code must not be empty (use None for a message without one)")
        protected = next((i for i, text in enumerate(texts) if code in text), None)
        if protected is None:
            raise ValueError("the code does not appear in any part")
    order = list(range(len(texts))) if shorten_order is None else list(shorten_order)
    if any(not 0 <= i < len(texts) for i in order):
        raise ValueError("shorten_order holds an index out of range")

    def joined() -> str:
        return SEPARATOR.join(text for text in texts if text)

    def fits() -> bool:
        return segments(joined()).segments <= max_segments

    # Drop parts in order until the rest fits...
    dropped: list[tuple[int, str]] = []
    for i in order:
        if fits():
            break
        if i != protected and texts[i]:
            dropped.append((i, texts[i]))
            texts[i] = ""
    # ...then give each back, the last dropped first, as much of it as still fits (the
    # last one dropped made the room; an earlier one may fit beside what is left).
    for i, original in reversed(dropped):
        texts[i] = _longest_fitting(
            original,
            lambda candidate, i=i: _fits_with(texts, i, candidate, max_segments),
            whole_only=bool(_URL.search(original)),
        )
    message = joined()
    if code is not None and code not in message:  # a backstop: the code's part is never touched
        raise AssertionError("fit_sms lost the code")
    return message


def _fits_with(texts: list[str], index: int, candidate: str, max_segments: int) -> bool:
    trial = [candidate if i == index else text for i, text in enumerate(texts)]
    return segments(SEPARATOR.join(text for text in trial if text)).segments <= max_segments


def _cut(text: str, length: int) -> str:
    """`text` cut to at most `length` characters at a word boundary, plus an ellipsis;
    "" when less than MIN_SHORTENED characters of it would be left."""
    if length >= len(text):
        return text
    head = text[:length]
    if not text[length].isspace():
        # The cut falls inside a word (or a URL): back to the end of the word before.
        last_space = re.search(r"\s\S*$", head)
        head = head[: last_space.start()] if last_space else ""
    head = head.rstrip(" \t\r\n,;:-.")
    if len(head) < MIN_SHORTENED:
        return ""
    return head + ELLIPSIS


def _longest_fitting(text: str, fits: Callable[[str], bool], *, whole_only: bool = False) -> str:
    """The longest `_cut(text, n)` that `fits`, by bisection ("" always fits); with
    `whole_only`, the text whole or nothing."""
    if whole_only:
        return text if fits(text) else ""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(_cut(text, middle)):
            low = middle
        else:
            high = middle - 1
    return _cut(text, low)


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# Twilio error codes (https://www.twilio.com/docs/api/errors) read from a 4xx answer.
_PERMANENT_CODES = {
    21211: INVALID_ADDRESS,  # invalid 'To' phone number
    21614: INVALID_ADDRESS,  # 'To' number is not a valid mobile number
    21610: OPTED_OUT,  # the recipient replied STOP
}


class TwilioSmsAdapter:
    """Sends through a provider that speaks Twilio's Messages API (Twilio itself, or a
    compatible one): POST {base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded,
    HTTP basic auth, `I-Twilio-Idempotency-Token` for deduplication."""

    provider = "sms provider"

    def __init__(
        self,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.timeout = timeout
        self.client = client

    @classmethod
    def from_settings(cls, channel: str = "sms") -> TwilioSmsAdapter:
        return cls(
            base_url=settings.SMS_BASE_URL,
            account_sid=settings.SMS_ACCOUNT_SID,
            auth_token=settings.SMS_AUTH_TOKEN,
            from_number=settings.SMS_FROM,
            timeout=settings.SMS_TIMEOUT,
        )

    def send(self, message: OutboundMessage) -> SendResult:
        if not _E164.fullmatch(message.to):
            raise PermanentError(INVALID_ADDRESS, "the recipient is not an E.164 phone number")
        if not message.text:
            raise PermanentError(REJECTED, "the message is empty")
        response = _http.post(
            self.url,
            provider=self.provider,
            timeout=self.timeout,
            client=self.client,
            data={"To": message.to, "From": self.from_number, "Body": message.text},
            auth=(self.account_sid, self.auth_token),
            headers={"I-Twilio-Idempotency-Token": message.idempotency_key},
        )
        body = _http.json_or_empty(response)
        if response.is_success:
            sid = body.get("sid")
            if isinstance(sid, str) and sid:
                return SendResult(provider_message_id=sid, status_code=response.status_code)
            # Not a provider's answer we can record (a wrong URL answering 200 must not
            # pass for sent); if it was the provider, the resend carries the same key.
            raise TransientError(
                f"{self.provider} answered {response.status_code} without a sid", status_code=response.status_code
            )
        code = body.get("code")
        code = code if isinstance(code, int) else None
        raise _http.error_for(
            response,
            provider=self.provider,
            reason=_PERMANENT_CODES.get(code, REJECTED) if code is not None else REJECTED,
            code=str(code) if code is not None else "",
        )
