from appease.issuance.models.customers import Customer, CustomerOrder, IncidentType, ReasonCode
from appease.issuance.models.helpdesk import HelpdeskIntegration, HelpdeskLaunch
from appease.issuance.models.issuance import Issuance
from appease.issuance.models.limits import BudgetCounter, LimitBudget, LimitPolicy, StaffProfile, Team
from appease.issuance.models.messages import OfferMessage

__all__ = [
    "BudgetCounter",
    "Customer",
    "CustomerOrder",
    "HelpdeskIntegration",
    "HelpdeskLaunch",
    "IncidentType",
    "Issuance",
    "LimitBudget",
    "LimitPolicy",
    "OfferMessage",
    "ReasonCode",
    "StaffProfile",
    "Team",
]
