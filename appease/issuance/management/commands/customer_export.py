"""Everything held about one customer, as JSON (GDPR/LGPD right of access)."""

import json

from django.core.management.base import BaseCommand, CommandError

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.privacy import customer_export
from appease.issuance.models import Customer


class Command(BaseCommand):
    help = "Print (or write to --output) everything held about one customer, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("customer_id", type=int)
        parser.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args, customer_id, output=None, **options):
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise CommandError(f"No customer {customer_id}.")
        text = json.dumps(customer_export(customer), indent=2, ensure_ascii=False, default=str)
        audit_event_record(actor=Actor(), action="customer.export", obj=customer, after={"via": "command"})
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        else:
            self.stdout.write(text)
