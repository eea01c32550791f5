"""The import-graph counter on a tree small enough to count by hand."""

import textwrap

from tests.architecture.import_graph import parse_layers, print_report, report

TREE = {
    "ig_top/__init__.py": "",
    "ig_top/apps.py": "",
    "ig_top/views.py": "from ig_low import models\n",
    "ig_top/services.py": "",
    "ig_top/sub/__init__.py": "",
    "ig_top/sub/apps.py": "",  # a nested app
    "ig_top/sub/core.py": "from ig_low import models\nfrom ig_top.sub import helpers\n",
    "ig_top/sub/helpers.py": """
        def later():
            from . import core
            import json
            return core, json
    """,
    "ig_low/__init__.py": "",
    "ig_low/apps.py": "",
    "ig_low/models.py": """
        from ig_top import views

        class Thing:
            def method(self):
                from ig_top import services
                return services
    """,
    "ig_low/migrations/__init__.py": "",
    "ig_low/migrations/0001_initial.py": "import ig_top.services\n\ndef forwards():\n    import ig_top.views\n",
}


def test_cycles_back_arrows_and_function_local_imports_are_counted(tmp_path, monkeypatch, capsys):
    # given
    for name, text in TREE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(tmp_path)

    # when
    r = report(("ig_top", "ig_low"), parse_layers("ig_top > ig_low > ig_top.sub"))

    # then: 11 modules, 6 imports (the migration's left out)
    assert (r["modules"], r["imports"]) == (11, 6)
    assert r["cycles"] == [["ig_low.models", "ig_top.views"], ["ig_top.sub.core", "ig_top.sub.helpers"]]
    assert r["apps"] == ["ig_low", "ig_top", "ig_top.sub"]
    arrows = {(a["from"], a["to"]): a["imports"] for a in r["app_arrows"]}
    assert arrows == {("ig_low", "ig_top"): 2, ("ig_top", "ig_low"): 1, ("ig_top.sub", "ig_low"): 1}
    assert r["app_cycles"] == [["ig_low", "ig_top"]]
    assert [(b["from"], b["to"], b["modules"]) for b in r["back_arrows"]] == [
        ("ig_low", "ig_top", ["ig_low.models -> ig_top.services", "ig_low.models -> ig_top.views"]),
        ("ig_top.sub", "ig_low", ["ig_top.sub.core -> ig_low.models"]),
    ]
    assert r["local_imports"] == [
        {"file": "ig_top/sub/helpers.py", "line": 3, "module": "ig_top.sub", "across_apps": False},
        {"file": "ig_low/models.py", "line": 6, "module": "ig_top", "across_apps": True},
    ]
    print_report(r)
    assert "back-arrows (lower layer imports higher): 2  (3 module imports)" in capsys.readouterr().out


def test_layers_read_top_to_bottom_with_peers_joined_by_commas():
    assert parse_layers(" appease, appease.demo , reporting > feedback>coupons ") == [
        ["appease", "appease.demo", "reporting"],
        ["feedback"],
        ["coupons"],
    ]
