"""The catalogue of known causes: its schema, its matching (pure), the order of the blocks it gives,
and the coverage figures the run reports."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from billing_digest import assemble, build, guides, transform
from billing_digest.topics import MISSING_STEP_MESSAGES, STEP_TOPIC
from devtools.datagen import catalogue as datagen

SHIPPED = guides.default_path()
SCHEMA = json.loads(SHIPPED.with_name("catalogue.schema.json").read_text(encoding="utf-8"))
DAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="module")
def shipped() -> guides.Catalogue:
    return guides.load()


def entry(**kw):
    base = {"id": "x", "match": {"steps": ["boleto"], "codes": ["48"]}, "action": "Corrija o CEP do cliente.",
            "fix": "invoice"}
    base.update(kw)
    return base


def parse(*entries) -> guides.Catalogue:
    return guides.parse({"version": 1, "causes": list(entries)}, SCHEMA)


# -- the shipped catalogue ------------------------------------------------------------------------

def test_the_shipped_catalogue_is_valid_and_its_schema_knows_every_step_of_the_digest(shipped):
    assert len(shipped.entries) >= 20 and len(set(shipped.ids)) == len(shipped.ids)
    steps = SCHEMA["$defs"]["match"]["properties"]["steps"]["items"]["enum"]
    assert sorted(steps) == sorted(STEP_TOPIC)


def _demo_errors():
    """Every error the demo's data generator makes on a step the digest reports, as (step, kind, status, code,
    message), with its per-invoice part filled in as the generator does; and every missing step."""
    fill = {"city": "Ribeirão Preto", "email": "financeiro@cliente-exemplo.com.br", None: ""}
    for kind in datagen.ERRORS:
        step = datagen.STEPS[kind.step]
        if step in STEP_TOPIC:
            yield step, "failed", datagen.STATUSES[kind.status], kind.code, kind.message + fill[kind.placeholder]
    for step, message in MISSING_STEP_MESSAGES.items():
        yield step, "missing", None, None, message


def test_every_cause_of_the_demo_data_has_a_guide(shipped):
    errors = list(_demo_errors())
    assert len(errors) >= 28
    missing = [e for e in errors if shipped.match(*e) is None]
    assert missing == []


@pytest.mark.parametrize("error,fix", [
    (("nfse", "failed", "failed", "CERT_EXPIRED", "Certificado digital A1 da empresa vencido"), "company"),
    (("nfse", "failed", "rejected", None, "Certificado vencido em 01/11/2026"), "company"),
    (("nfse", "failed", "rejected", "E160", "E160 - Código de serviço inválido para o município de Osasco"),
     "company"),
    (("boleto", "failed", "failed", "HTTP_401", "Credenciais da API do banco expiradas (HTTP 401)"), "company"),
    (("boleto", "failed", "rejected", "77", "Convênio não cadastrado no banco"), "company"),
    (("boleto", "failed", "rejected", "48", "Banco recusou o registro: CEP do pagador inválido"), "invoice"),
    (("nfse", "failed", "failed", "TIMEOUT", "Prefeitura fora do ar (timeout após 60s)"), "none"),
    (("overdue_email", "failed", "rejected", "552", "552 5.2.2 Caixa postal cheia: a@b.com.br"), "invoice"),
    (("charge_email", "failed", "rejected", "550", "550 5.1.1 Caixa postal inexistente: c@d.com.br"), "invoice"),
])
def test_the_issue_s_seed_causes_are_covered_with_their_kind_of_fix(shipped, error, fix):
    guide = shipped.match(*error)
    assert guide is not None and guide.fix == fix
    assert (guide.path is not None) or fix != "company"  # a company-level fix says where


# -- the schema, and the errors a product editor reads ---------------------------------------------

@pytest.mark.parametrize("bad,says", [
    (entry(match={"steps": ["boleto"], "codes": [48]}), "entry 1 ('x'), match.codes.0: 48 is not of type 'string'"),
    (entry(fix="company"), "entry 1 ('x'): 'path' is a required property"),
    (entry(fix="sometimes"), "entry 1 ('x'), fix: 'sometimes' is not one of"),
    (entry(match={"steps": ["mark_billed"], "codes": ["1"]}), "match.steps.0: 'mark_billed' is not one of"),
    (entry(match={"steps": ["boleto"]}), "entry 1 ('x'), match:"),  # neither codes, message nor kind
    (entry(path="//evil.example/x", page="X"), "path: '//evil.example/x' does not match"),
    (entry(path="/cadastros/clientes"), "'page' is a dependency of 'path'"),
    (entry(acao="typo"), "Additional properties are not allowed ('acao' was unexpected)"),
])
def test_a_bad_entry_is_refused_with_a_message_naming_it(bad, says):
    with pytest.raises(guides.CatalogueError) as caught:
        parse(bad)
    assert says in str(caught.value)


def test_duplicate_ids_and_phrases_without_words_are_refused():
    with pytest.raises(guides.CatalogueError, match="'x': the id is used twice"):
        parse(entry(), entry())
    with pytest.raises(guides.CatalogueError, match="a message phrase has no words"):
        parse(entry(match={"steps": ["boleto"], "message": ["..."]}))


def test_an_unreadable_catalogue_costs_the_day_its_guides_not_its_e_mails(tmp_path, monkeypatch):
    broken = tmp_path / "catalogue.yaml"
    shutil.copy(SHIPPED.with_name("catalogue.schema.json"), tmp_path)
    broken.write_text("version: 1\ncauses:\n  - id: x\n    fix: [unclosed\n", encoding="utf-8")
    monkeypatch.setattr(guides, "default_path", lambda: broken)
    problems = transform.Problems()
    assert build.catalogue(problems) is guides.EMPTY
    assert problems.counts == {"cause_catalogue_invalid": 1}
    assert "catalogue.yaml" in problems.examples["cause_catalogue_invalid"][0]


# -- matching ---------------------------------------------------------------------------------------

def test_phrases_ignore_case_accents_and_the_parts_that_name_one_invoice():
    cat = parse(entry(match={"steps": ["charge_email"], "message": ["Caixa postal inexistente: fulano@x.com"]}))
    assert cat.match("charge_email", "failed", "rejected", "550", "550 5.1.1 CAIXA POSTAL INEXISTENTE: b@c.com.br")
    assert cat.match("charge_email", "failed", "rejected", "550", "Caixa postal cheia: b@c.com.br") is None
    assert cat.match("overdue_email", "failed", "rejected", "550", "Caixa postal inexistente: b@c.com.br") is None


def test_codes_are_compared_normalised_and_either_code_or_phrase_matches():
    cat = parse(entry(match={"steps": ["boleto"], "codes": ["HTTP_401"], "message": ["credenciais expiradas"]}))
    assert cat.match("boleto", "failed", "failed", "http-401", "Não autorizado")
    assert cat.match("boleto", "failed", "failed", None, "Credenciais expiradas")
    assert cat.match("boleto", "failed", "failed", "HTTP_403", "Proibido") is None


def test_kind_and_status_filter():
    cat = parse(entry(match={"steps": ["nfse"], "kind": "missing"}),
                entry(id="y", match={"steps": ["nfse"], "status": "rejected", "codes": ["E1"]}))
    assert cat.match("nfse", "missing", None, None, "Nenhuma emissão").id == "x"
    assert cat.match("nfse", "failed", "failed", None, "Nenhuma emissão") is None
    assert cat.match("nfse", "failed", "rejected", "E1", "x").id == "y"
    assert cat.match("nfse", "failed", "failed", "E1", "x") is None


def test_the_most_specific_entry_wins_and_ties_go_to_the_first():
    cat = parse(entry(id="phrase", match={"steps": ["boleto"], "message": ["cep invalido"]}),
                entry(id="code", match={"steps": ["boleto"], "codes": ["48"]}),
                entry(id="both", match={"steps": ["boleto"], "codes": ["48"], "message": ["cep do pagador"]}),
                entry(id="phrase-again", match={"steps": ["boleto"], "message": ["cep invalido"]}))
    assert cat.match("boleto", "failed", "rejected", "48", "CEP do pagador inválido").id == "both"
    assert cat.match("boleto", "failed", "rejected", "48", "Outro texto").id == "code"
    assert cat.match("boleto", "failed", "rejected", "99", "CEP inválido").id == "phrase"


def test_matching_is_done_once_per_cause_not_per_error(shipped, monkeypatch):
    calls = []
    score = guides.Rule.score
    monkeypatch.setattr(guides.Rule, "score", lambda self, *a: calls.append(a) or score(self, *a))
    cat = guides.Catalogue(shipped.entries)
    rows = [row(i, entity_id=1 + i % 50, error_message=f"550 5.1.1 Caixa postal inexistente: c{i}@x.com.br")
            for i in range(2000)]
    assemble.build_entity_digests(prepared(rows), DAY, 20, 5, cat, guides.Coverage())
    assert len(calls) == len(shipped.entries)  # 50 companies, one cause: one match


# -- in the digest: order, budget, coverage ----------------------------------------------------------

COLUMNS = ["invoice_id", "step", "kind", "status", "entity_id", "entity_name", "entity_cnpj", "customer_name",
           "invoice_number", "amount", "billing_date", "billing_type", "invoice_path", "error_code",
           "error_message", "attempts", "last_attempt_at"]


def row(invoice_id, step="charge_email", status="rejected", entity_id=1, amount="100", **kw):
    base = {"invoice_id": invoice_id, "step": step, "kind": "failed", "status": status, "entity_id": entity_id,
            "entity_name": f"Empresa {entity_id}", "entity_cnpj": None, "customer_name": "Cliente",
            "invoice_number": f"F-{invoice_id}", "amount": Decimal(amount), "billing_date": DAY,
            "billing_type": "automatic", "invoice_path": f"/f/{invoice_id}", "error_code": None,
            "error_message": "Falhou", "attempts": 1, "last_attempt_at": None}
    base.update(kw)
    return base


def prepared(rows):
    return transform.prepare_errors(pd.DataFrame(rows, columns=COLUMNS), transform.Problems())


BANK_401 = "Credenciais da API do banco expiradas (HTTP 401)"
CEP = "Banco recusou o registro: CEP do pagador inválido"
TIMEOUT = "Timeout na API de registro do banco (30s)"


def boleto_day():
    rows = [row(i, "boleto", error_code="48", error_message=CEP, amount="900") for i in range(1, 7)]       # 6
    rows += [row(10 + i, "boleto", error_code="BANK_TIMEOUT", error_message=TIMEOUT) for i in range(5)]  # 5
    rows += [row(20 + i, "boleto", "failed", error_code="HTTP_401", error_message=BANK_401) for i in range(3)]
    rows += [row(30, "boleto", error_code="ZZ", error_message="Erro desconhecido do banco")]              # 1
    rows += [row(40, "boleto", "failed", error_code="CONV_SEM_CARTEIRA",
                 error_message="Convênio bancário sem carteira cadastrada")]                              # 1
    return prepared(rows)


def test_company_level_fixes_come_first_retried_causes_last(shipped):
    topic = assemble.build_entity_digests(boleto_day(), DAY, 20, 5, shipped)[1]["topics"][0]
    order = [(c["code"], c["count"], c["guide"] and c["guide"]["fix"]) for c in topic["causes"]]
    assert order == [("HTTP_401", 3, "company"), ("CONV_SEM_CARTEIRA", 1, "company"), ("48", 6, "invoice"),
                     ("ZZ", 1, None), ("BANK_TIMEOUT", 5, "none")]
    assert topic["causes"][0]["guide"] == {
        "id": "boleto-credenciais-banco-expiradas", "fix": "company", "path": "/configuracoes/contas-bancarias",
        "page": "Contas bancárias",
        "action": "Renove as credenciais da API do banco na conta bancária da empresa e emita os boletos de novo."}


def test_without_a_catalogue_nothing_moves_and_the_budget_lists_the_same_causes(shipped):
    plain = assemble.build_entity_digests(boleto_day(), DAY, 9, 5)[1]["topics"][0]
    assert [c["code"] for c in plain["causes"]] == ["48", "BANK_TIMEOUT"] and plain["other_causes"] == 3
    assert all(c["guide"] is None for c in plain["causes"])
    guided = assemble.build_entity_digests(boleto_day(), DAY, 9, 5, shipped)[1]["topics"][0]
    assert [c["code"] for c in guided["causes"]] == ["48", "BANK_TIMEOUT"]  # by size, then shown by fix
    assert (guided["other_causes"], guided["other_errors"]) == (plain["other_causes"], plain["other_errors"])


def test_causes_sharing_a_guide_are_shown_together(shipped):
    def e160(i, city):
        return row(i, "nfse", error_code="E160", error_message=f"E160 - Código de serviço inválido para o município de "
                   f"{city}")
    rows = [e160(1, "Osasco"), e160(2, "Osasco"), e160(3, "Osasco"), e160(4, "Santos"), e160(5, "Barueri")]
    rows += [row(10 + i, "nfse", error_code="E181", error_message="E181 - Alíquota do ISS inválida para o código de"
                 " serviço") for i in range(2)]
    causes = assemble.build_entity_digests(prepared(rows), DAY, 20, 5, shipped)[1]["topics"][0]["causes"]
    # by size: Osasco (3), E181 (2), Santos, Barueri; E160's fix is said once for its three blocks
    assert [(c["code"], c["count"]) for c in causes] == [("E160", 3), ("E160", 1), ("E160", 1), ("E181", 2)]


def test_coverage_counts_every_error_and_names_the_causes_without_a_guide(shipped):
    rows = [row(i, "boleto", entity_id=1 + i % 3, error_code="48", error_message=CEP) for i in range(9)]
    rows += [row(100 + i, entity_id=1 + i % 2, error_code="571",
                 error_message=f"Remetente bloqueado pela política de c{i}@dominio.com.br") for i in range(4)]
    rows += [row(200, "nfse", entity_id=3, error_code="E999", error_message="Rejeição desconhecida")]
    coverage = guides.Coverage()
    assemble.build_entity_digests(prepared(rows), DAY, 2, 1, shipped, coverage)  # a tiny budget: all counted
    assert (coverage.errors, coverage.with_guide) == (14, 9)
    assert coverage.share == pytest.approx(9 / 14)
    assert coverage.top_unguided() == (
        guides.Unguided("charge_email 571: remetente bloqueado pela politica de <email>", 4, 2),
        guides.Unguided("nfse E999: rejeicao desconhecida", 1, 1))
    assert guides.share_text(14, 9) == "64% (9 of 14)" and guides.share_text(0, 0) == "-"


def test_the_catalogue_file_is_plain_yaml_a_product_editor_can_read():
    data = yaml.safe_load(Path(SHIPPED).read_text(encoding="utf-8"))
    assert data["version"] == 1
    for e in data["causes"]:
        assert set(e) <= {"id", "match", "action", "fix", "path", "page"}
        assert e["action"].strip().endswith(".")
