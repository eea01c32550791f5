"""Channel adapters: send one message through email, SMS, chat or social and say how it
went. The interface is in `base`; docs/delivery.md ("Channels") describes it."""

from appease.delivery.channels.base import (
    ChannelAdapter,
    DeliveryError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    adapter_for,
)

__all__ = [
    "ChannelAdapter",
    "DeliveryError",
    "OutboundMessage",
    "PermanentError",
    "SendResult",
    "TransientError",
    "adapter_for",
]
