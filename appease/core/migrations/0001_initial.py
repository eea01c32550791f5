"""The kernel's models, moved here from the appease app (ADR 0010). Their tables stay
where they were (db_table), so this changes Django's state only: no table is created,
and the append-only triggers on appease_auditevent keep working."""

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
                    name='FailureCounter',
                    fields=[
                        ('key', models.CharField(max_length=255, primary_key=True, serialize=False, verbose_name='key')),
                        ('count', models.PositiveIntegerField(default=0, verbose_name='count')),
                        ('expires_at', models.DateTimeField(db_index=True, verbose_name='expires at')),
                    ],
                    options={
                        'verbose_name': 'failure counter',
                        'verbose_name_plural': 'failure counters',
                        'db_table': 'appease_failurecounter',
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('scope', models.CharField(help_text='The operation, e.g. redemptions.create.', max_length=64, verbose_name='scope')),
                        ('owner', models.CharField(help_text='Who sent it, e.g. merchant:3 or user:12.', max_length=64, verbose_name='owner')),
                        ('key', models.CharField(max_length=255, verbose_name='key')),
                        ('fingerprint', models.CharField(help_text='SHA-256 of the request body.', max_length=64, verbose_name='fingerprint')),
                        ('status', models.CharField(choices=[('in_progress', 'In progress'), ('completed', 'Completed')], default='in_progress', max_length=12, verbose_name='status')),
                        ('response_status', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='response status')),
                        ('result', models.JSONField(blank=True, null=True, verbose_name='result')),
                        ('locked_at', models.DateTimeField(verbose_name='locked at')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created at')),
                        ('completed_at', models.DateTimeField(blank=True, null=True, verbose_name='completed at')),
                    ],
                    options={
                        'verbose_name': 'idempotency key',
                        'verbose_name_plural': 'idempotency keys',
                        'db_table': 'appease_idempotencykey',
                        'constraints': [models.UniqueConstraint(fields=('scope', 'owner', 'key'), name='idempotency_key_unique')],
                    },
                ),
                migrations.CreateModel(
                    name='StaffAPIKey',
                    fields=[
                        ('id', models.CharField(editable=False, max_length=150, primary_key=True, serialize=False, unique=True, verbose_name='ID')),
                        ('prefix', models.CharField(editable=False, max_length=8, unique=True, verbose_name='prefix')),
                        ('hashed_key', models.CharField(editable=False, max_length=150, verbose_name='hashed key')),
                        ('created', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created')),
                        ('name', models.CharField(default=None, help_text='A free-form name for the API key. Need not be unique. 50 characters max.', max_length=50, verbose_name='name')),
                        ('revoked', models.BooleanField(blank=True, default=False, help_text='If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)', verbose_name='revoked')),
                        ('expiry_date', models.DateTimeField(blank=True, help_text='Once the API key expires, clients cannot use it anymore.', null=True, verbose_name='expires')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_keys', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                    ],
                    options={
                        'verbose_name': 'staff API key',
                        'verbose_name_plural': 'staff API keys',
                        'db_table': 'appease_staffapikey',
                        'ordering': ('-created',),
                        'abstract': False,
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_label', models.CharField(help_text='user:<name>, merchant:<name> or system.', max_length=100, verbose_name='actor label')),
                        ('action', models.CharField(db_index=True, max_length=50, verbose_name='action')),
                        ('object_type', models.CharField(max_length=50, verbose_name='object type')),
                        ('object_id', models.CharField(max_length=64, verbose_name='object ID')),
                        ('before', models.JSONField(blank=True, null=True, verbose_name='before')),
                        ('after', models.JSONField(blank=True, null=True, verbose_name='after')),
                        ('request_id', models.CharField(blank=True, max_length=64, verbose_name='request ID')),
                        ('ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='IP address')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created at')),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='actor')),
                    ],
                    options={
                        'verbose_name': 'audit event',
                        'verbose_name_plural': 'audit log',
                        'db_table': 'appease_auditevent',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['object_type', 'object_id'], name='appease_aud_object__c4b92c_idx')],
                    },
                ),
            ],
        ),
        # The content types (and so the permissions, and the groups and users holding
        # them) follow the models; back to appease when unapplied.
        content_types_move(['failurecounter', 'idempotencykey', 'staffapikey', 'auditevent'], "appease", "core"),
    ]
