"""The real SMTP server and provider fixtures of the channel tests, shared here."""

from tests.delivery.channels.conftest import free_port, httpserver_listen_address, smtp_server  # noqa: F401
