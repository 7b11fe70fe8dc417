"""One place per fact: the DAG's id, its schedule, the product's paths, the notification kind and the
topics' titles are each written in one module of the product code, and everything else imports them
(a restatement is how "change the cron and manual runs silently use another window" happens)."""

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PRODUCT_CODE = [*sorted((ROOT / "plugins").rglob("*.py")), *sorted((ROOT / "dags").glob("*.py"))]
# fact -> the one module (relative to plugins/) whose code may write it
FACTS = {
    "billing_error_digest": "billing_digest/__init__.py",
    "billing_errors": "billing_digest/__init__.py",
    "America/Sao_Paulo": "billing_digest/window.py",
    "30 6 * * *": None,  # derived from window.SEND_TIME, written nowhere
    "/faturamento/faturamentos": "billing_digest/product.py",
    "/meu-perfil/notificacoes": "billing_digest/product.py",
    "/notificacoes": "billing_digest/product.py",
    "/cancelar": "billing_digest/product.py",
    "Nota Fiscal": "billing_digest/topics.py",
    "Cobrança (Boleto Bancário)": "billing_digest/topics.py",
    "Notificação ao cliente": "billing_digest/topics.py",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def string_constants(path: Path) -> list[str]:
    """Every string literal of the module's code (f-string parts included), docstrings and comments not."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def writers_of(fact: str) -> set[str]:
    where = set()
    for path in PRODUCT_CODE:
        if any(fact in s for s in string_constants(path)):
            base = ROOT / "plugins" if "plugins" in path.parts else ROOT
            where.add(str(path.relative_to(base)))
    return where


@pytest.mark.parametrize("fact", FACTS)
def test_each_fact_is_written_in_one_module(fact):
    home = FACTS[fact]
    assert writers_of(fact) == ({home} if home else set())


def test_the_check_sees_a_restatement(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text('"""doc: /faturamento/faturamentos is fine here."""\nURL = f"{1}/faturamento/faturamentos"\n')
    assert string_constants(sneaky) == ["/faturamento/faturamentos"]
