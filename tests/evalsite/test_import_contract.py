"""Dependencies run one way (docs/design.md §1): evalsite → {api, dashboard, demo} → {ranking,
separability} → annotations → lib, and the pure cores import no Django and no app. Every import counts,
function-local ones included (they hid the arrows that ran back up). A new arrow the wrong way fails here.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What each app may import of the others. api reads the dashboard's queries and exports: the API is the
# dashboard's numbers over HTTP, so that one sideways arrow is allowed, and only that one.
ALLOWED = {
    "lib": set(),
    "annotations": {"lib"},
    "separability": {"annotations", "lib"},
    "generation": {"separability", "annotations", "lib"},
    "ranking": {"annotations", "lib"},
    "judges": {"generation", "ranking", "annotations", "lib"},
    "dashboard": {"judges", "generation", "ranking", "separability", "annotations", "lib"},
    "api": {"dashboard", "judges", "generation", "ranking", "separability", "annotations", "lib"},
    "demo": {"judges", "generation", "ranking", "separability", "annotations", "lib"},
    "evalsite": {"api", "dashboard", "demo", "judges", "generation", "ranking", "separability", "annotations",
                 "lib"},
}
# Django-free cores: numbers and file formats only. They may use lib's pure modules and the one (pure) reader
# of the import formats.
PURE = {
    "separability/engine.py", "separability/similarity.py", "separability/rouge.py", "separability/consistency.py",
    "ranking/elo.py", "ranking/bt.py", "ranking/ratings.py", "ranking/common.py", "ranking/cli.py",
    "ranking/adaptive.py", "ranking/simulate.py",
    "annotations/imports/parse.py",
    "judges/verdicts.py", "judges/metrics.py", "judges/cli.py", "judges/prompts.py", "demo/llmfao.py",
    "lib/vocabulary.py", "lib/csvsafe.py", "generation/prompts.py", "generation/clients.py",
}
PURE_LIB = {"lib.vocabulary", "lib.csvsafe", "annotations.imports.parse", "generation.prompts"}


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the source, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(app: str, relative_path: str, source: str) -> list[str]:
    problems = []
    for line, module in imports_of(source):
        top = module.split(".")[0]
        where = f"{relative_path}:{line}: imports {module}"
        if relative_path in PURE:
            if top == "django" or (top in ALLOWED and top != app and module not in PURE_LIB):
                problems.append(f"{where} (a pure core imports no Django and no app)")
                continue
        if top in ALLOWED and top != app and top not in ALLOWED[app]:
            problems.append(f"{where} ({app} may import only {sorted(ALLOWED[app]) or 'nothing of ours'})")
    return problems


def app_sources():
    for app in ALLOWED:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield app, path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_every_import_runs_down_the_layers():
    problems = [p for app, path, source in app_sources() for p in violations(app, path, source)]
    assert problems == []


def test_the_contract_catches_an_arrow_that_runs_back_up():
    """annotations importing ranking, even inside a function, is what the contract exists to refuse."""
    source = "def f():\n    from ranking.services import schedule_leaderboard_recompute\n"
    assert violations("annotations", "annotations/queue.py", source) == [
        "annotations/queue.py:2: imports ranking.services (annotations may import only ['lib'])"]
    assert violations("separability", "separability/services.py", "import ranking.tasks\n")
    assert violations("ranking", "ranking/bt.py", "from django.db import models\n")
    assert violations("ranking", "ranking/bt.py", "from lib.vocabulary import Winner\n") == []


def test_the_standalone_leaderboard_runs_without_django():
    """`python -m ranking` reads vote files through annotations' reader: importing it loads no Django."""
    code = ("import sys, ranking.cli, ranking.__main__; "
            "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
    assert result.stdout.strip() == "[]"
