"""The outbox's models, moved here from the appease app (ADR 0010). Their tables stay
where they were (db_table): this changes Django's state only."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from appease.core.db import content_types_move


class Migration(migrations.Migration):
    dependencies = [
        ("appease", "0021_translatable_names"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Delivery',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('appeasement', 'Appeasement'), ('follow_up', 'Follow-up')], default='appeasement', max_length=12, verbose_name='kind')),
                        ('channel', models.CharField(choices=[('email', 'Email'), ('sms', 'SMS'), ('chat', 'Chat'), ('social', 'Social message')], max_length=10, verbose_name='channel')),
                        ('address', models.CharField(help_text='Where it was sent, as it was then.', max_length=255, verbose_name='address')),
                        ('language', models.CharField(max_length=10, verbose_name='language')),
                        ('status', models.CharField(choices=[('pending', 'Waiting to be sent'), ('sending', 'Sending'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('failed', 'Failed'), ('dead', 'Gave up')], default='pending', max_length=10, verbose_name='status')),
                        ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                        ('attempts_before_requeue', models.PositiveSmallIntegerField(db_default=0, default=0, help_text='The retry horizon and the attempt limit count from the attempt after these.', verbose_name='attempts before the last requeue')),
                        ('next_attempt_at', models.DateTimeField(help_text='Due time: the sweeper sends it from then on.', verbose_name='next attempt at')),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True, verbose_name='lease expires at')),
                        ('provider_message_id', models.CharField(blank=True, max_length=255, verbose_name='provider message ID')),
                        ('failure_reason', models.CharField(blank=True, max_length=40, verbose_name='failure reason')),
                        ('last_error', models.CharField(blank=True, max_length=255, verbose_name='last error')),
                        ('request_id', models.CharField(blank=True, max_length=64, verbose_name='request ID')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created at')),
                        ('sent_at', models.DateTimeField(blank=True, null=True, verbose_name='sent at')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True, verbose_name='delivered at')),
                        ('failed_at', models.DateTimeField(blank=True, null=True, verbose_name='failed at')),
                        ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='appease.customer', verbose_name='customer')),
                        ('issuance', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='appease.issuance', verbose_name='issuance')),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='requested by')),
                        ('resend_of', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='resends', to='delivery.delivery', verbose_name='resend of')),
                    ],
                    options={
                        'verbose_name': 'delivery',
                        'verbose_name_plural': 'deliveries',
                        'db_table': 'appease_delivery',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='DeliveryAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveSmallIntegerField(verbose_name='number')),
                        ('channel', models.CharField(choices=[('email', 'Email'), ('sms', 'SMS'), ('chat', 'Chat'), ('social', 'Social message')], max_length=10, verbose_name='channel')),
                        ('started_at', models.DateTimeField(verbose_name='started at')),
                        ('finished_at', models.DateTimeField(verbose_name='finished at')),
                        ('outcome', models.CharField(choices=[('sent', 'Sent'), ('transient', 'Temporary failure'), ('permanent', 'Permanent failure')], max_length=10, verbose_name='outcome')),
                        ('status_code', models.PositiveIntegerField(blank=True, help_text='HTTP status or SMTP reply code.', null=True, verbose_name='status code')),
                        ('detail', models.CharField(blank=True, max_length=255, verbose_name='detail')),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='attempt_log', to='delivery.delivery', verbose_name='delivery')),
                    ],
                    options={
                        'verbose_name': 'delivery attempt',
                        'verbose_name_plural': 'delivery attempts',
                        'db_table': 'appease_deliveryattempt',
                        'ordering': ['delivery', 'number'],
                    },
                ),
                migrations.CreateModel(
                    name='DeliveryStatusEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(max_length=20, verbose_name='status')),
                        ('provider_status', models.CharField(blank=True, max_length=50, verbose_name='provider status')),
                        ('received_at', models.DateTimeField(auto_now_add=True, verbose_name='received at')),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='status_events', to='delivery.delivery', verbose_name='delivery')),
                    ],
                    options={
                        'verbose_name': 'delivery status callback',
                        'verbose_name_plural': 'delivery status callbacks',
                        'db_table': 'appease_deliverystatusevent',
                        'ordering': ['-received_at'],
                    },
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='delivery_due_idx'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(condition=models.Q(('status', 'sending')), fields=['lease_expires_at'], name='delivery_lease_idx'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['provider_message_id'], name='delivery_provider_id_idx'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(condition=models.Q(('status', 'dead')), fields=['status', 'created_at'], name='delivery_dead_idx'),
                ),
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'appeasement'), _negated=True), ('issuance__isnull', False), _connector='OR'), name='appeasement_has_an_issuance'),
                ),
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'sending'), _negated=True), ('lease_expires_at__isnull', False), _connector='OR'), name='sending_has_a_lease'),
                ),
            ],
        ),
        # The content types (and so the permissions, and the groups and users holding
        # them) follow the models; back to appease when unapplied.
        content_types_move(['delivery', 'deliveryattempt', 'deliverystatusevent'], "appease", "delivery"),
    ]
