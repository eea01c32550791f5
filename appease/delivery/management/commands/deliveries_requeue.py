"""Send dead deliveries again in bulk, after a provider outage (docs/delivery.md, "Dead
letters, resend and requeue"). Each delivery requeued is audited (`delivery.requeue`)."""

import re
from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from appease.core.context import Actor
from appease.delivery.models import DELIVERY_CHANNELS
from appease.delivery.services import deliveries_requeue

_AGO = re.compile(r"^(\d+)([mhd])$")


def since_value(raw: str) -> datetime:
    """An ISO date or date-time (without an offset: the server's time zone), or a span
    back from now: 90m, 2h, 1d."""
    raw = raw.strip()
    ago = _AGO.match(raw)
    if ago:
        amount, unit = int(ago.group(1)), ago.group(2)
        return timezone.now() - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        moment = parse_datetime(raw)
        if moment is None and (day := parse_date(raw)) is not None:
            moment = datetime.combine(day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--since: {raw!r} is not a date, a date-time or a span such as 90m, 2h, 1d.")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Send dead deliveries (retries used up) again: each goes back to pending with its idempotency key "
        "and a fresh retry horizon. Audited per delivery."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only those that died from then on: 2026-03-14, 2026-03-14T09:30, 2h, 1d.")
        parser.add_argument(
            "--channel", choices=[value for value, _label in DELIVERY_CHANNELS], help="Only this channel."
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be requeued; change nothing.")

    def handle(self, *args, since=None, channel=None, dry_run=False, **options):
        outcome = deliveries_requeue(
            actor=Actor(),
            since=since_value(since) if since else None,
            channel=channel,
            dry_run=dry_run,
            via="command",
        )
        for delivery in outcome.requeued:
            self.stdout.write(f"{'would requeue' if dry_run else 'requeued'} {delivery.pk} ({delivery.channel})")
        for delivery, reason in outcome.skipped:
            self.stdout.write(f"skipped {delivery.pk} ({delivery.channel}): {reason}")
        verb = "would be requeued" if dry_run else "requeued"
        self.stdout.write(f"{len(outcome.requeued)} {verb}, {len(outcome.skipped)} skipped.")
