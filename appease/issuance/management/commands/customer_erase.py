"""Erase one customer's personal data on request (GDPR/LGPD), keeping the financial trail."""

from django.core.management.base import BaseCommand, CommandError

from appease.core.context import Actor
from appease.core.privacy import customer_erase
from appease.issuance.models import Customer


class Command(BaseCommand):
    help = "Remove or pseudonymise a customer's personal data; amounts, codes' hashes and the audit trail stay."

    def add_arguments(self, parser):
        parser.add_argument("customer_id", type=int)
        parser.add_argument("--yes", action="store_true", help="Do it (there is no undo).")

    def handle(self, *args, customer_id, yes=False, **options):
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise CommandError(f"No customer {customer_id}.")
        if not yes:
            raise CommandError("Erasure cannot be undone: run again with --yes.")
        customer_erase(actor=Actor(), customer=customer, reason="request (command)")
        self.stdout.write(self.style.SUCCESS(f"Customer {customer_id} erased."))
