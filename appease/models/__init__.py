from appease.models.apikeys import StaffAPIKey
from appease.models.audit import AuditEvent
from appease.models.counters import FailureCounter
from appease.models.customers import Channel, Customer, CustomerOrder, IncidentType, ReasonCode
from appease.models.delivery import Delivery, DeliveryAttempt, DeliveryStatusEvent, OfferMessage
from appease.models.idempotency import IdempotencyKey
from appease.models.issuance import Issuance
from appease.models.limits import BudgetCounter, LimitBudget, LimitPolicy, StaffProfile, Team

__all__ = [
    "AuditEvent",
    "BudgetCounter",
    "Channel",
    "Customer",
    "CustomerOrder",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryStatusEvent",
    "FailureCounter",
    "IdempotencyKey",
    "IncidentType",
    "Issuance",
    "LimitBudget",
    "LimitPolicy",
    "OfferMessage",
    "ReasonCode",
    "StaffAPIKey",
    "StaffProfile",
    "Team",
]
