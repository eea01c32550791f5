"""Static files in production: `collectstatic` with the production storage into a folder
of its own, then requests through the WSGI application with DEBUG off, as gunicorn
serves them (WhiteNoise in the middleware; no finders, no runserver). The same through a
real gunicorn is in test_entrypoint.py."""

from __future__ import annotations

import gzip
import logging
import re

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

PRODUCTION_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "appease.staticfiles.ManifestStaticFilesStorage"},
}
FOREVER = "max-age=315360000, public, immutable"


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root, STORAGES=PRODUCTION_STORAGES):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def production(collected, settings):
    settings.DEBUG = False  # WhiteNoise: no autorefresh, no finders; STATIC_ROOT only
    settings.STATIC_ROOT = collected
    settings.STORAGES = PRODUCTION_STORAGES
    settings.WHITENOISE_MAX_AGE = 3600
    return Client()


def fetch(client, url, **headers):
    response = client.get(url, secure=True, headers=headers)
    # (read to the end, the test client closes the file itself)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize(
    ("name", "content_type", "sample"),
    [
        ("admin/css/base.css", "text/css", b"--body-bg"),
        ("vendor/plotly.min.js", "text/javascript", b"plotly.js"),
        ("feedback-widget.js", "text/javascript", b"data-site-key"),
        ("appease/app.css", "text/css", b"--accent"),
    ],
)
def test_each_file_is_served_under_its_hashed_name_cached_for_good(production, name, content_type, sample):
    # given the production storage: {% static %} names the content-hashed copy
    url = static(name)
    stem, _, suffix = name.rpartition(".")
    assert re.fullmatch(rf"/static/{re.escape(stem)}\.[0-9a-f]{{12}}\.{suffix}", url), url

    # when a browser asks for it
    response, body = fetch(production, url)

    # then it is there, with its type, cacheable for good (the name changes with the content)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Cache-Control"] == FOREVER
    assert sample in body


def test_a_browser_that_accepts_gzip_gets_the_compressed_copy(production):
    response, body = fetch(production, static("vendor/plotly.min.js"), **{"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["Vary"] == "Accept-Encoding"
    assert b"plotly.js" in gzip.decompress(body)


def test_the_widget_under_its_plain_name_is_cached_for_an_hour(production):
    # given the shop's page with the embed snippet (the plain name: it must survive upgrades)
    response, body = fetch(production, "/static/feedback-widget.js")

    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=3600, public"
    assert b"data-site-key" in body


def test_the_admin_login_page_links_stylesheets_that_answer(production):
    # given the admin's login page as production renders it
    page = production.get("/admin/login/", secure=True)
    assert page.status_code == 200
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.content.decode())
    assert any(re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", href) for href in stylesheets), stylesheets

    # then every stylesheet it links is served
    for href in stylesheets:
        response, body = fetch(production, href)
        assert response.status_code == 200, href
        assert body


def test_an_unknown_static_file_is_404(production):
    response, _ = fetch(production, "/static/nothing-here.js")

    assert response.status_code == 404


def test_a_file_missing_from_the_manifest_links_its_plain_name_instead_of_a_500(
    settings, tmp_path, caplog, monkeypatch
):
    # given production storage whose manifest is missing (collectstatic never ran there)
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = PRODUCTION_STORAGES

    # (a worker or gunicorn test earlier in the run may have reconfigured logging: capture
    # this logger's warnings whatever state it was left in)
    logger = logging.getLogger("appease.staticfiles")
    monkeypatch.setattr(logger, "disabled", False)
    caplog.set_level(logging.WARNING, logger="appease.staticfiles")

    # when a page links a file
    url = static("appease/app.css")

    # then it links the plain name, and the log says what to run
    assert url == "/static/appease/app.css"
    assert "not in the manifest" in caplog.text
