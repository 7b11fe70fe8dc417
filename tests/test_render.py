"""Rendering a company's digest for one recipient: content, links, escaping, caching."""

import pytest

from billing_digest.render import Recipient
from tests.digests import NOW, parse, payload
from tests.digests import renderer as make_renderer


@pytest.fixture(scope="module")
def renderer():
    return make_renderer()


def test_message_is_multipart_alternative_with_pt_br_content(renderer):
    message_id, raw = renderer.message(payload(), Recipient(5, "Maria Souza", "maria@exemplo.com.br"), NOW)
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == "Padaria Pão & Cia: 4 erros de faturamento em 27/11/2026"
    assert msg["To"] == "Maria Souza <maria@exemplo.com.br>"
    assert msg["From"].addresses[0].addr_spec == "notificacoes@fintera.com.br"
    assert msg["Message-ID"] == message_id == "<billing-errors.2026-11-27.7.5@fintera.com.br>"
    text = msg.get_body(("plain",)).get_content()
    assert "Olá, Maria." in text
    assert "R$\xa01.234,56" in text and "27/11/2026" in text
    assert "11.222.333/0001-81" in text
    assert "suporte@fintera.com.br" in text and "Meu Perfil > Notificações" in text
    # topics in order: Nota Fiscal, Cobrança, Notificação
    titles = ("== Nota Fiscal", "== Cobrança (Boleto Bancário)", "== Notificação ao cliente")
    positions = [text.index(t) for t in titles]
    assert positions == sorted(positions)
    assert "Boleto não emitido" in text and "valor não informado" in text and "Manual" in text
    assert "E-mail de cobrança rejeitado (3 tentativas)" in text


def test_every_invoice_has_its_link_in_both_parts(renderer):
    msg = parse(renderer.message(payload(), Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for i in (1, 2, 3, 4):
        url = f"https://app.exemplo.com.br/faturamento/faturamentos/{i}?utm_source="
        assert url in text
        assert f'href="{url}' in html


def test_html_is_escaped_and_css_is_inlined(renderer):
    evil = payload(entity={"id": 7, "name": "<b>ACME</b>", "cnpj": None})
    evil["topics"][0]["items"][0]["message"] = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    msg = parse(renderer.message(evil, Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html
    assert "<b>ACME</b>" not in html and "&lt;b&gt;ACME&lt;/b&gt;" in html
    assert '<script>alert("x")</script>' in text  # plain text is plain
    assert "<style" not in html and 'style="' in html and "class=\"item\"" in html


def test_more_items_link_to_the_full_list(renderer):
    p = payload()
    p["topics"][0].update(total=52, more=50)
    msg = parse(renderer.message(p, Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    text = msg.get_body(("plain",)).get_content()
    assert "e mais 50 erros neste tópico: https://app.exemplo.com.br/faturamento/faturamentos?entidade=7" in text


def test_cached_and_spliced_bodies_equal_a_plain_render(renderer):
    recipient = Recipient(5, "Maria", "m@exemplo.com.br")
    p = payload()
    p["topics"][0]["items"][0]["message"] = "linha com espaço no fim   \t" + "x" * 300
    msg = parse(renderer.message(p, recipient, NOW)[1])
    rendered = renderer.render(p, recipient, NOW)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html


