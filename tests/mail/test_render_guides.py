"""What to do, once per cause block, in both parts: each kind of catalogue entry, a repeated guide,
and a cause without an entry (rendered as before guides existed)."""

from __future__ import annotations

import re

import pytest

from billing_digest.mail.render import Recipient
from tests.digests import NOW, cause, item, payload, topic
from tests.digests import renderer as make_renderer

BASE = "https://app.exemplo.com.br"
TAGS = "utm_source=resumo-erros-faturamento&utm_medium=email"
BANK = {"id": "boleto-credenciais-banco-expiradas", "action": "Renove as credenciais da API do banco.",
        "fix": "company", "path": "/configuracoes/contas-bancarias", "page": "Contas bancárias"}
CEP = {"id": "boleto-cep-pagador-invalido", "action": "Corrija o CEP no cadastro do cliente.", "fix": "invoice",
       "path": "/cadastros/clientes", "page": "Clientes"}
EMIT = {"id": "nfse-nao-emitida", "action": "Emita a nota pela página do faturamento.", "fix": "invoice",
        "path": None, "page": None}
DOWN = {"id": "boleto-banco-fora-do-ar", "action": "A API de registro do banco não respondeu.", "fix": "none",
        "path": None, "page": None}


@pytest.fixture(scope="module")
def renderer():
    return make_renderer()


def boleto(i, **kw):
    return item(i, "boleto", status="failed", code="X", message=f"Erro {kw.pop('n', i)}", **kw)


def render(renderer, *causes):
    p = payload(total=sum(c["count"] for c in causes), topics=[topic("boleto", "Cobrança (Boleto Bancário)", *causes)])
    return renderer.render(p, Recipient(5, "Maria Souza", "maria@exemplo.com.br"), NOW)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_company_level_fix_says_it_clears_the_whole_block_at_once_with_its_link(renderer):
    out = render(renderer, cause(boleto(1, n=1), boleto(2, n=1), count=59, guide=BANK))
    link = f"{BASE}/configuracoes/contas-bancarias?{TAGS}"
    assert ("Como resolver: Renove as credenciais da API do banco. Uma correção na configuração da empresa "
            "resolve os 59 de uma vez.") in text_of(out.html)
    assert f'href="{link.replace("&", "&amp;")}"' in out.html and "Abrir Contas bancárias</a>" in out.html
    assert ("  > Como resolver: Renove as credenciais da API do banco. Uma correção na configuração da empresa "
            "resolve os 59 de uma vez.\n    Abrir Contas bancárias: " + link + "\n") in out.text


def test_a_company_level_fix_on_one_invoice_says_it_is_configuration(renderer):
    out = render(renderer, cause(boleto(1), guide=BANK))
    assert "A correção é feita uma vez, na configuração da empresa." in text_of(out.html)
    assert "A correção é feita uma vez, na configuração da empresa." in out.text
    assert "de uma vez" not in out.text.replace("feita uma vez", "")


def test_a_per_invoice_fix_says_so_and_links_its_page(renderer):
    out = render(renderer, cause(boleto(1, n=1), boleto(2, n=1), guide=CEP))
    assert ("Como resolver: Corrija o CEP no cadastro do cliente. A correção é feita em cada um dos 2 faturamentos."
            " Abrir Clientes") in text_of(out.html)
    assert f"    Abrir Clientes: {BASE}/cadastros/clientes?{TAGS}\n" in out.text
    assert "de uma vez" not in out.text


def test_a_fix_without_a_page_has_no_link_of_its_own(renderer):
    out = render(renderer, cause(boleto(1), guide=EMIT))
    assert "Como resolver: Emita a nota pela página do faturamento." in text_of(out.html)
    assert "  > Como resolver: Emita a nota pela página do faturamento.\n  " + BASE + "/faturamento/faturamentos/1?" \
        in out.text
    assert "Abrir None" not in out.html + out.text


def test_a_cause_the_product_retries_says_there_is_nothing_to_do(renderer):
    out = render(renderer, cause(boleto(1, n=1), boleto(2, n=1), guide=DOWN))
    said = "Nada a fazer: A API de registro do banco não respondeu. A nova tentativa é automática: não é preciso " \
           "fazer nada."
    assert said in text_of(out.html) and f"  > {said}\n" in out.text
    assert "Como resolver" not in out.html + out.text


def test_a_guide_shared_by_the_block_above_is_said_once(renderer):
    out = render(renderer, cause(boleto(1, n=1), boleto(2, n=1), guide=BANK), cause(boleto(3), guide=BANK),
                 cause(boleto(4), guide=CEP))
    assert text_of(out.html).count("Renove as credenciais") == 1 and out.text.count("Renove as credenciais") == 1
    assert "Como resolver: igual ao item acima." in text_of(out.html)
    assert "  > Como resolver: igual ao item acima.\n" in out.text
    assert out.text.count("Corrija o CEP") == 1


def test_a_cause_without_an_entry_reads_as_before_guides_existed(renderer):
    """The payloads stored before guides (no 'guide' key) and those without a match render the same,
    with no guide; the footer's support tip stays."""
    legacy = cause(boleto(1, n=1), boleto(2, n=1))
    unmatched = {**legacy, "guide": None}
    old, new = render(renderer, legacy), render(renderer, unmatched)
    assert (old.html, old.text) == (new.html, new.text)
    assert "Como resolver" not in new.html + new.text and "Nada a fazer" not in new.html + new.text
    assert "Dúvidas sobre algum erro? Escreva para" in new.text


def test_the_html_stays_balanced_with_every_kind_of_guide(renderer):
    """The CSS inliner parses the templates as HTML: a branch that leaves a tag open gets it closed
    elsewhere (an extra </div> after the last card, as a first draft of this feature did)."""
    out = render(renderer, cause(boleto(1, n=1), boleto(2, n=1), guide=BANK), cause(boleto(3), guide=BANK),
                 cause(boleto(4), guide=CEP), cause(boleto(5), guide=EMIT), cause(boleto(6), guide=DOWN),
                 cause(boleto(7)))
    for tag in ("div", "p", "a", "strong"):
        assert out.html.count(f"<{tag} ") + out.html.count(f"<{tag}>") == out.html.count(f"</{tag}>"), tag
