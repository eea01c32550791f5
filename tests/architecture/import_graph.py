"""Count the import graph's cycles and back-arrows: `.venv/bin/python tests/architecture/import_graph.py --help`.

Modules and imports come from grimp (the graph import-linter checks; migrations left out).
An app is every package with an `apps.py`, plus each top-level package for its remaining
modules. A back-arrow is an import from an app in a lower layer to one in a higher layer.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import grimp

PACKAGES = ("appease", "coupons", "feedback", "reporting")
# The layers, top to bottom; "a, b" puts two apps in one layer (--layers overrides it).
LAYERS = [
    "appease, appease.demo, reporting",
    "feedback",
    "appease.accounts",
    "appease.issuance",
    "coupons",
    "appease.webhooks",
    "appease.delivery",
    "appease.core",
]

Graph = dict[str, set[str]]


def parse_layers(text: str) -> list[list[str]]:
    return [[app.strip() for app in layer.split(",") if app.strip()] for layer in text.split(">") if layer.strip()]


def module_graph(packages: tuple[str, ...]) -> Graph:
    """Direct imports between our modules, migrations left out."""
    g = grimp.build_graph(*packages, include_external_packages=False, cache_dir=None)
    keep = {m for m in g.modules if ".migrations" not in m}
    return {m: {i for i in g.find_modules_directly_imported_by(m) if i in keep} for m in sorted(keep)}


def _reachable(graph: Graph, start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one node, largest first (graphs of a few hundred nodes)."""
    reach = {node: _reachable(graph, node) for node in graph}
    components = {frozenset({node} | {other for other in reach[node] if node in reach[other]}) for node in graph}
    return sorted((sorted(c) for c in components if len(c) > 1), key=lambda c: (-len(c), c))


def apps_of(graph: Graph, packages: tuple[str, ...]) -> list[str]:
    return sorted(set(packages) | {m.removesuffix(".apps") for m in graph if m.endswith(".apps")})


def app_for(module: str, apps: list[str]) -> str:
    return max((a for a in apps if module == a or module.startswith(a + ".")), key=len)


def app_arrows(graph: Graph, apps: list[str]) -> dict[tuple[str, str], list[str]]:
    """(importing app, imported app) -> the module imports behind the arrow ("importer -> imported")."""
    arrows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer, imported in sorted((m, i) for m, targets in graph.items() for i in targets):
        pair = (app_for(importer, apps), app_for(imported, apps))
        if pair[0] != pair[1]:
            arrows[pair].append(f"{importer} -> {imported}")
    return dict(sorted(arrows.items()))


def is_back(arrow: tuple[str, str], layers: list[list[str]]) -> bool:
    rank = {app: depth for depth, layer in enumerate(layers) for app in layer}
    return arrow[0] in rank and arrow[1] in rank and rank[arrow[0]] > rank[arrow[1]]


def local_imports(packages: tuple[str, ...]) -> list[tuple[str, int, str, str]]:
    """Imports of our packages inside a function or method: (file, line, importing module, imported module)."""
    found: list[tuple[str, int, str, str]] = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is not a package on sys.path"
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            if "migrations" not in path.parts:
                found += _nested_imports(path, packages, root.parent)
    return found


def _nested_imports(path: Path, packages: tuple[str, ...], base: Path) -> list[tuple[str, int, str, str]]:
    parts = path.relative_to(base).with_suffix("").parts
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    found = set()  # a set: an import in a nested function is seen from each enclosing one
    for func in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve from this file's package
                names = [".".join([*parts[: len(parts) - node.level], *filter(None, [node.module])])]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            ours = [n for n in names if n.split(".")[0] in packages]
            found |= {(str(path.relative_to(base)), node.lineno, module, n) for n in ours}
    return sorted(found)


def report(packages: tuple[str, ...], layers: list[list[str]]) -> dict[str, Any]:
    graph = module_graph(packages)
    apps = apps_of(graph, packages)
    arrows = app_arrows(graph, apps)
    app_graph: Graph = {app: set() for app in apps}
    for a, b in arrows:
        app_graph[a].add(b)
    return {
        "modules": len(graph),
        "imports": sum(len(targets) for targets in graph.values()),
        "cycles": cycles(graph),
        "apps": apps,
        "layers": layers,
        "unlayered": [app for app in apps if not any(app in layer for layer in layers)],
        "unknown": [app for layer in layers for app in layer if app not in apps],
        "app_arrows": [{"from": a, "to": b, "imports": len(m)} for (a, b), m in arrows.items()],
        "app_cycles": cycles(app_graph),
        "back_arrows": [
            {"from": a, "to": b, "imports": len(m), "modules": m}
            for (a, b), m in arrows.items()
            if is_back((a, b), layers)
        ],
        "local_imports": [
            {"file": f, "line": n, "module": imported, "across_apps": app_for(src, apps) != app_for(imported, apps)}
            for f, n, src, imported in local_imports(packages)
        ],
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"modules: {r['modules']}  direct imports: {r['imports']}  (migrations left out)")
    print(f"import cycles between modules: {len(r['cycles'])}")
    for n, cycle in enumerate(r["cycles"], 1):
        print(f"  {n}. {len(cycle)} modules: {', '.join(cycle)}")
    print(f"apps: {len(r['apps'])}  ({', '.join(r['apps'])})")
    print(f"layers, top to bottom: {' > '.join(', '.join(layer) for layer in r['layers'])}")
    if r["unlayered"]:
        print(f"  in no layer (their arrows are not judged): {', '.join(r['unlayered'])}")
    if r["unknown"]:
        print(f"  layers name what is no app: {', '.join(r['unknown'])}")
    print(f"arrows between apps: {len(r['app_arrows'])}")
    backs = {(b["from"], b["to"]) for b in r["back_arrows"]}
    for arrow in r["app_arrows"]:
        mark = "  BACK" if (arrow["from"], arrow["to"]) in backs else ""
        print(f"  {arrow['from']} -> {arrow['to']}: {arrow['imports']} module imports{mark}")
    print(f"app-level cycles: {len(r['app_cycles'])}")
    for cycle in r["app_cycles"]:
        print(f"  {', '.join(cycle)}")
    total = sum(b["imports"] for b in r["back_arrows"])
    print(f"back-arrows (lower layer imports higher): {len(r['back_arrows'])}  ({total} module imports)")
    for b in r["back_arrows"]:
        print(f"  {b['from']} -> {b['to']}: {b['imports']}")
        print("".join(f"      {m}\n" for m in b["modules"]), end="")
    across = sum(imp["across_apps"] for imp in r["local_imports"])
    print(f"function-local imports of our packages: {len(r['local_imports'])}  ({across} across apps, marked ACROSS)")
    for imp in r["local_imports"]:
        print(f"  {imp['file']}:{imp['line']}  {imp['module']}{'  ACROSS' if imp['across_apps'] else ''}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--layers",
        default=" > ".join(LAYERS),
        help='layers top to bottom: ">" separates layers, "," joins the apps of one layer, '
        'e.g. "appease, appease.demo, reporting > feedback > coupons" (quote it). Default: "%(default)s"',
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("packages", nargs="*", default=PACKAGES, help="top-level packages (default: ours)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, wherever we run from
    r = report(tuple(args.packages), parse_layers(args.layers))
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
