"""The staff CSV import: every line checked first, all or nothing, audited."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from appease.accounts.services import StaffImportInvalid, staff_csv_read, staff_import
from appease.core.context import SYSTEM
from appease.core.models import AuditEvent
from appease.issuance.models import StaffProfile, Team
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

GOOD = (
    "name,email,role,team,languages\n"
    "Ana Souza,ana@example.com,CSR,North,pt-br en\n"
    "Bruno Díaz,bruno@example.com,supervisor,,es\n"
)


@pytest.fixture
def north(db):
    return Team.objects.create(name="North")


def test_the_command_creates_people_with_role_team_and_languages(tmp_path, north):
    # given
    path = tmp_path / "staff.csv"
    path.write_text(GOOD, encoding="utf-8")
    out = io.StringIO()
    # when
    call_command("staff_import", str(path), stdout=out)
    # then
    assert "2 created" in out.getvalue()
    ana = User.objects.get(email="ana@example.com")
    assert (ana.username, ana.first_name, ana.last_name) == ("ana@example.com", "Ana", "Souza")
    assert not ana.has_usable_password()
    assert list(ana.groups.values_list("name", flat=True)) == ["CSR"]
    profile = StaffProfile.objects.get(user=ana)
    assert (profile.team, profile.languages) == (north, ["pt-br", "en"])
    bruno = User.objects.get(email="bruno@example.com")
    assert list(bruno.groups.values_list("name", flat=True)) == ["Supervisor"] and bruno.is_staff
    assert AuditEvent.objects.filter(action="user.import_create").count() == 2


def test_an_import_again_updates_and_reports_the_unchanged(north):
    rep = staff_user("Supervisor", username="ana-old")
    rep.email = "ANA@example.com"
    rep.save()
    result = staff_import(rows=staff_csv_read(GOOD.encode()), actor=SYSTEM)
    assert [user.pk for user in result.updated] == [rep.pk]
    rep.refresh_from_db()
    assert list(rep.groups.values_list("name", flat=True)) == ["CSR"] and not rep.is_staff
    change = AuditEvent.objects.get(action="user.import_change", object_id=str(rep.pk))
    assert change.before["groups"] == ["Supervisor"] and change.after["groups"] == ["CSR"]
    again = staff_import(rows=staff_csv_read(GOOD.encode()), actor=SYSTEM)
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 2)


def test_one_bad_line_changes_nothing_and_every_problem_is_listed(north):
    data = (
        "name;email;role;team;languages\n"
        "Ana Souza;ana@example.com;CSR;North;en\n"
        ";not-an-email;Boss;Nowhere;en xx\n"
        "Ana Again;ana@example.com;CSR;;\n"
    )
    with pytest.raises(StaffImportInvalid) as raised:
        staff_import(rows=staff_csv_read(data), actor=SYSTEM)
    found = {(problem.line, problem.field) for problem in raised.value.problems}
    assert found == {(3, "name"), (3, "email"), (3, "role"), (3, "team"), (3, "languages"), (4, "email")}
    assert not User.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"email\nana@example.com\n",
        b"name,email,role\n",
        b'name,email,role\n"unterminated,ana@example.com,CSR\n',
        b"name,email,role\n" + b"=cmd|' /C calc'!A0,ana@example.com,CSR\n",
    ],
)
def test_hostile_files_are_problems_not_errors(data):
    with pytest.raises(StaffImportInvalid):
        staff_import(rows=staff_csv_read(data), actor=SYSTEM)
    assert not User.objects.exists()


def test_the_command_lists_the_problems_in_the_language_asked(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text("name,email,role\nAna,ana@example.com,Boss\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("staff_import", str(path), "--language", "es", stderr=err)
    assert "line 2, role: El rol debe ser uno de: CSR, Supervisor." in err.getvalue()


def test_a_supervisor_uploads_in_the_admin_and_sees_problems_in_their_language(client, north):
    supervisor = staff_user("Supervisor", username="boss")
    client.force_login(supervisor)
    bad = SimpleUploadedFile("staff.csv", b"name,email,role,team\nAna,ana@example.com,CSR,Nowhere\n")
    page = client.post("/admin/staff-import/", {"file": bad}, HTTP_ACCEPT_LANGUAGE="es")
    assert page.status_code == 200
    assert "No hay ningún equipo llamado “Nowhere”." in page.content.decode()
    assert not User.objects.filter(email="ana@example.com").exists()
    good = SimpleUploadedFile("staff.csv", b"name,email,role,team\nAna,ana@example.com,CSR,North\n")
    done = client.post("/admin/staff-import/", {"file": good})
    assert done.status_code == 302
    created = User.objects.get(email="ana@example.com")
    event = AuditEvent.objects.get(action="user.import_create", object_id=str(created.pk))
    assert event.actor == supervisor


def test_a_supervisor_cannot_grant_the_supervisor_role(client, north):
    client.force_login(staff_user("Supervisor", username="boss"))
    upload = SimpleUploadedFile("staff.csv", b"name,email,role\nAna,ana@example.com,Supervisor\n")
    page = client.post("/admin/staff-import/", {"file": upload})
    assert "Only an administrator may grant the Supervisor role." in page.content.decode()
    assert not User.objects.filter(email="ana@example.com").exists()


def test_reps_cannot_reach_the_import(client):
    client.force_login(staff_user("CSR"))
    assert client.get("/admin/staff-import/").status_code in (302, 404)
    client.logout()
    assert client.get("/admin/staff-import/").status_code == 302


def test_invitations_go_through_smtp_after_the_import(
    client, smtp_server, settings, north, django_capture_on_commit_callbacks
):
    settings.PUBLIC_URL = "https://appease.example"
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    upload = SimpleUploadedFile("staff.csv", GOOD.encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/staff-import/", {"file": upload, "invite": "on"})
    assert response.status_code == 302
    assert sorted(rcpt for _from, (rcpt,) in smtp_server.handler.envelopes) == ["ana@example.com", "bruno@example.com"]
    message = next(m for m in smtp_server.handler.messages if m["To"] == "ana@example.com")
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "https://appease.example/accounts/reset/" in body
    link = body[body.index("/accounts/reset/") :].split()[0]
    form = client.get(link, follow=True)
    assert form.context["validlink"]


def test_the_admin_index_links_to_the_import(client):
    client.force_login(staff_user("Supervisor", username="boss"))
    assert 'href="/admin/staff-import/"' in client.get("/admin/").content.decode()
