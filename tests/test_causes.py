"""One cause, one block: the grouping rules as pure functions, on realistic pt-BR messages."""

import pytest

from billing_digest.causes import (
    ELLIPSIS,
    cause_key,
    code_in_message,
    message_skeleton,
    normalise_code,
    split_message,
    summarise,
)
from devtools.datagen import catalogue


def key(message, code=None, step="nfse", kind="failed", status="rejected"):
    return cause_key(step, kind, status, code, message)


# -- the same cause ---------------------------------------------------------------------------------

def test_twenty_identical_messages_are_one_cause():
    message = "Credenciais da API do banco expiradas (HTTP 401)"
    keys = {cause_key("boleto", "failed", "failed", "HTTP_401", message) for _ in range(20)}
    assert len(keys) == 1


@pytest.mark.parametrize("variant", [
    "credenciais da API do banco expiradas (HTTP 401)",           # case
    "Credenciais  da API do banco\texpiradas (HTTP 401)",         # whitespace
    "  Credenciais da API do banco expiradas (HTTP 401).",        # trailing punctuation, padding
    "Credenciais da API do banco expiradas (http 401)",
])
def test_case_whitespace_and_trailing_punctuation_do_not_split_a_cause(variant):
    assert key(variant, "HTTP_401") == key("Credenciais da API do banco expiradas (HTTP 401)", "HTTP_401")


def test_accents_do_not_split_a_cause():
    assert key("Aliquota do ISS invalida", "E181") == key("Alíquota do ISS inválida", "E181")


def test_code_spelling_does_not_split_a_cause():
    assert normalise_code(" http-401 ") == normalise_code("HTTP_401") == "http_401"
    assert normalise_code(None) == normalise_code("  ") == ""
    assert key("x", "HTTP_401") == key("x", "http 401")


@pytest.mark.parametrize("a,b", [
    # each customer's bounced address
    ("550 5.1.1 Caixa postal inexistente: financeiro@limamarques.com.br",
     "550 5.1.1 Caixa postal inexistente: nfe@caldeira.com.br"),
    # invoice numbers, CNPJ/CPF, CEP
    ("RPS FAT-2026-004512 rejeitado: CNPJ do tomador 11.222.333/0001-81 inválido",
     "RPS FAT-2026-004999 rejeitado: CNPJ do tomador 60.161.626/0001-01 inválido"),
    ("CPF 123.456.789-09 do pagador inválido", "CPF 987.654.321-00 do pagador inválido"),
    ("Banco recusou o registro: CEP 01310-100 do pagador inválido",
     "Banco recusou o registro: CEP 04538-132 do pagador inválido"),
    # amounts, with and without R$
    ("Valor R$ 1.234,56 acima do limite do convênio", "Valor R$ 50,00 acima do limite do convênio"),
    ("Valor 1234.56 divergente do contrato", "Valor 99.90 divergente do contrato"),
    # dates and times
    ("Vencimento 30/11/2026 anterior à data de emissão", "Vencimento 02/12/2026 anterior à data de emissão"),
    ("Lote enviado em 2026-11-27T10:31:02-03:00 sem retorno", "Lote enviado em 2026-11-28T06:02:00Z sem retorno"),
    ("Prefeitura fora do ar às 10:31", "Prefeitura fora do ar às 23:05"),
    ("Prefeitura fora do ar às 10h31", "Prefeitura fora do ar às 9h05"),
    # protocol ids, and short ids after an identifier word
    ("Protocolo 2026112700123 aguardando processamento", "Protocolo 2026112700987 aguardando processamento"),
    ("Fatura nº 12 já possui NFS-e", "Fatura nº 345 já possui NFS-e"),
    ("Lote 3 rejeitado pela prefeitura", "Lote 41 rejeitado pela prefeitura"),
    ("RPS 45 já informado", "RPS 7 já informado"),
    ("Nota #9 cancelada", "Nota #10 cancelada"),
    # links
    ("Consulte https://nfse.prefeitura.sp.gov.br/consulta?id=123",
     "Consulte https://nfse.prefeitura.sp.gov.br/consulta?id=456"),
])
def test_what_names_one_invoice_does_not_split_a_cause(a, b):
    assert key(a) == key(b)


# -- different causes -------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [
    # a code in the text, when the source gives no code column
    ("Credenciais da API do banco expiradas (HTTP 401)", "Credenciais da API do banco expiradas (HTTP 403)"),
    ("Rejeição 539: duplicidade de NF-e", "Rejeição 204: duplicidade de NF-e"),
    ("550 5.1.1 Caixa postal inexistente", "550 5.1.2 Caixa postal inexistente"),   # SMTP enhanced code
    ("550 5.1.1 Caixa postal inexistente", "551 5.1.1 Caixa postal inexistente"),   # SMTP reply
    ("Banco recusou: CEP inválido (código 0042)", "Banco recusou: CEP inválido (código 0043)"),
    ("Serviço retornou status 1001", "Serviço retornou status 1002"),
    ("Banco recusou o registro (48)", "Banco recusou o registro (46)"),              # bank return codes
    # short numbers stay: when unsure, keep apart
    ("Prefeitura fora do ar (timeout após 60s)", "Prefeitura fora do ar (timeout após 30s)"),
    # different words
    ("E160 - Código de serviço inválido para o município de São Paulo",
     "E160 - Código de serviço inválido para o município de Campinas"),
    ("Banco recusou o registro: CEP do pagador inválido", "Banco recusou o registro: CPF/CNPJ do pagador inválido"),
])
def test_what_names_the_error_keeps_causes_apart(a, b):
    assert key(a) != key(b)


def test_code_step_kind_and_status_keep_causes_apart():
    message = "Banco recusou o registro"
    base = cause_key("boleto", "failed", "rejected", "48", message)
    assert cause_key("boleto", "failed", "rejected", "46", message) != base           # another code
    assert cause_key("boleto", "failed", "rejected", None, message) != base           # no code
    assert cause_key("boleto", "failed", "failed", "48", message) != base             # failed, not rejected
    assert cause_key("nfse", "failed", "rejected", "48", message) != base             # another step
    # a step that did not happen is never one block with a step that failed
    assert (cause_key("boleto", "missing", None, None, "Nenhum boleto registrado para esta cobrança.")
            != cause_key("boleto", "failed", "failed", None, "Nenhum boleto registrado para esta cobrança."))
    # the charge e-mail and the overdue notice are two steps of one topic: two causes
    bounce = "550 5.1.1 Caixa postal inexistente: nfe@caldeira.com.br"
    assert (cause_key("charge_email", "failed", "rejected", "550", bounce)
            != cause_key("overdue_email", "failed", "rejected", "550", bounce))


def test_the_errors_own_code_in_the_message_is_never_a_variable():
    # a four-digit code would otherwise read as an identifier
    assert split_message("Rejeição 1810: alíquota inválida", "1810").values == ()
    assert key("E1810 - alíquota inválida", "E1810") != key("E1811 - alíquota inválida", "E1811")
    assert split_message("E1810 - alíquota inválida", None).values == ("1810",)


def test_every_kind_of_the_data_generators_catalogue_is_its_own_cause():
    """Every error the demo's data can hold (devtools/datagen/catalogue.py): one cause per kind,
    and a kind's per-row part (the customer's address) never splits it."""
    keys = {}
    for kind in catalogue.ERRORS:
        step = catalogue.STEPS[kind.step]
        status = catalogue.STATUSES[kind.status]
        fill = {"email": ["financeiro@silvacosta.com.br", "nfe@caldeira.com.br"], "city": ["Recife", "Recife"],
                None: ["", ""]}[kind.placeholder]
        a, b = (cause_key(step, "failed", status, kind.code, kind.message + f) for f in fill)
        assert a == b, kind
        keys[(step, kind.code)] = a
    assert len(set(keys.values())) == len(keys)


# -- the block's message ----------------------------------------------------------------------------

def test_identical_messages_are_shown_once_without_details():
    message = "Credenciais da API do banco expiradas (HTTP 401)"
    assert summarise([message] * 20, "HTTP_401") == (message, (None,) * 20)


def test_what_differs_between_invoices_becomes_their_detail():
    messages = ["550 5.1.1 Caixa postal inexistente: financeiro@limamarques.com.br",
                "550 5.1.1 Caixa postal inexistente: nfe@caldeira.com.br",
                "550 5.1.1 Caixa postal inexistente: financeiro@limamarques.com.br"]
    shared, details = summarise(messages, "550")
    assert shared == f"550 5.1.1 Caixa postal inexistente: {ELLIPSIS}"
    assert details == ("financeiro@limamarques.com.br", "nfe@caldeira.com.br", "financeiro@limamarques.com.br")


def test_what_every_invoice_shares_stays_in_the_message():
    messages = ["Código de serviço (lista LC 116/03) inválido; RPS FAT-2026-000001",
                "Código de serviço (lista LC 116/03) inválido; RPS FAT-2026-000002"]
    shared, details = summarise(messages)
    assert shared == f"Código de serviço (lista LC 116/03) inválido; RPS FAT-{ELLIPSIS}"
    assert details == ("2026-000001", "2026-000002")


def test_the_first_messages_wording_is_the_blocks():
    shared, details = summarise(["Falha  no banco: lote 12", "falha no banco: lote 13"])
    assert shared == f"Falha  no banco: lote {ELLIPSIS}" and details == ("12", "13")


def test_skeleton_names_the_kind_of_each_variable():
    assert message_skeleton("Fatura nº 12 de R$ 1.234,56 vence em 30/11/2026; avise a@b.com.br") == \
        "fatura no <number> de <money> vence em <date>; avise <email>"


# -- each code once ---------------------------------------------------------------------------------

@pytest.mark.parametrize("code,message,inside", [
    ("E181", "E181 - Alíquota do ISS inválida para o código de serviço", True),
    ("550", "550 5.1.1 Caixa postal inexistente: nfe@caldeira.com.br", True),
    ("535", "Falha de autenticação no servidor SMTP de envio (535 5.7.8)", True),
    ("HTTP_401", "Credenciais da API do banco expiradas (HTTP 401)", True),
    ("http-503", "Webservice da prefeitura indisponível (HTTP 503)", True),
    ("0042", "Banco recusou: CEP do pagador inválido (código 0042)", True),
    ("48", "Banco recusou o registro: CEP do pagador inválido", False),
    ("HTTP_503", "Webservice indisponível (HTTP 5030)", False),          # whole tokens only
    ("BANK-503", "API de registro de boletos indisponível (HTTP 503 Service Unavailable)", False),
    ("CERT_EXPIRED", "Certificado digital A1 da empresa vencido", False),
    (None, "qualquer", False),
    ("", "qualquer", False),
])
def test_a_code_inside_its_message_is_found(code, message, inside):
    assert code_in_message(code, message) is inside
