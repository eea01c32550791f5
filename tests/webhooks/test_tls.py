"""HTTPS to a pinned address: the request goes to the address that was checked, and TLS
still verifies the certificate for the endpoint's host name (its SNI), against a real
local TLS server with a certificate made here."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import httpx
import pytest
from pytest_httpserver import HTTPServer

from appease.delivery.channels.base import TransientError
from appease.delivery.channels.endpoint import EndpointAdapter
from tests.delivery.channels.conftest import make_message

OPENSSL = shutil.which("openssl") or "openssl"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")


def certificate(tmp_path, name: str):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    command = [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}"]
    command += ["-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (a fixed command)
    return key, cert


@pytest.fixture
def tls_server(tmp_path):
    def start(name: str):
        key, cert = certificate(tmp_path, name)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
        server.start()
        servers.append(server)
        return server, cert

    servers: list[HTTPServer] = []
    yield start
    for server in servers:
        server.clear()
        if server.is_running():
            server.stop()


def adapter_trusting(cert) -> EndpointAdapter:
    client = httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), follow_redirects=False)
    return EndpointAdapter(timeout=5, allow_private=True, client=client)


def webhook(url: str):
    return make_message(channel="webhook", to=url, text='{"id":"e1"}', metadata={"headers": {"Appease-Event-Id": "e1"}})


def test_https_reaches_the_checked_address_with_the_certificate_verified_for_the_name(tls_server):
    server, cert = tls_server("localhost")
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    result = adapter_trusting(cert).send(webhook(f"https://localhost:{server.port}/hook"))
    assert result.status_code == 200
    (request, _response) = server.log[0]
    assert request.headers["Host"] == f"localhost:{server.port}"
    assert request.get_data() == b'{"id":"e1"}'


def test_a_certificate_for_another_name_is_refused(tls_server):
    server, cert = tls_server("elsewhere.example")
    server.expect_request("/hook").respond_with_data("ok")
    with pytest.raises(TransientError):
        adapter_trusting(cert).send(webhook(f"https://localhost:{server.port}/hook"))
    assert server.log == []
