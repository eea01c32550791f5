from appease.core.models.apikeys import StaffAPIKey
from appease.core.models.audit import AuditEvent
from appease.core.models.counters import FailureCounter
from appease.core.models.idempotency import IdempotencyKey

__all__ = ["AuditEvent", "FailureCounter", "IdempotencyKey", "StaffAPIKey"]
