"""The dependency rules of ARCHITECTURE.md, read from the source: `model_runtime` imports none of
the other packages; `evals`, `agents` and `tools` do not import `app`; routes call services only
(no route imports another route, `tools` or `agents`)."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_packages(path: Path) -> set[str]:
    """Dotted names a module imports (absolute imports only: the project uses no relative ones)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        bad = sorted(n for n in imported_packages(path) if n.split(".")[0] in forbidden or n in forbidden
                     or any(n.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(REPO))] = bad
    return found


@pytest.mark.parametrize(("package", "forbidden"), [
    ("model_runtime", ("app", "agents", "tools", "evals")),
    ("evals", ("app", "agents")),
    ("agents", ("app", "evals")),
    ("tools", ("app", "agents", "evals")),
    ("app/api/routes", ("tools", "agents", "evals", "app.api.routes")),
])
def test_dependencies_point_downward(package: str, forbidden: tuple[str, ...]):
    assert offenders(package, forbidden) == {}
