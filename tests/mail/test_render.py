"""Rendering a company's digest for one recipient: content, links, escaping, caching."""

import pytest

from billing_digest.mail.render import Recipient
from tests.digests import NOW, cause, item, parse, payload, topic
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
    assert "Boleto não emitido" in text and "valor não informado" in text and "Faturamento manual" in text
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
    evil["topics"][0]["causes"][0]["message"] = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    evil["topics"][0]["causes"][0]["invoices"][0]["detail"] = "<b>detalhe</b>"
    msg = parse(renderer.message(evil, Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img" not in html
    assert "<b>ACME</b>" not in html and "&lt;b&gt;ACME&lt;/b&gt;" in html
    assert "<b>detalhe</b>" not in html and "&lt;b&gt;detalhe&lt;/b&gt;" in html
    assert '<script>alert("x")</script>' in text  # plain text is plain
    assert "<style" not in html and 'style="' in html and "class=\"item\"" in html


def bodies(renderer, p):
    msg = parse(renderer.message(p, Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    text, html = (msg.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))
    return msg, text, html


BANK_401 = "Credenciais da API do banco expiradas (HTTP 401)"


def bank_block(count=20, listed=5):
    return cause(*[item(10 + i, "boleto", status="failed", code="HTTP_401", message=BANK_401,
                        amount=f"{1000 - i}.00") for i in range(listed)], count=count,
                 amount_total="18000.00")


def test_one_cause_is_one_block_with_the_cause_once_and_every_invoice_linked(renderer):
    p = payload(total=20, topics=[topic("boleto", "Cobrança (Boleto Bancário)", bank_block())])
    msg, text, html = bodies(renderer, p)
    assert msg["Subject"] == "Padaria Pão & Cia: 20 erros de faturamento em 27/11/2026"
    for part in (text, html):
        assert part.count(BANK_401) == 1 and part.count("Falha na emissão do boleto") == 1
        assert "20 faturamentos" in part and "R$\xa018.000,00" in part
        for i in range(10, 15):
            assert f"https://app.exemplo.com.br/faturamento/faturamentos/{i}?utm_source=" in part
        assert "R$\xa01.000,00" in part and "Nº FAT-10" in part
    assert html.count(">Abrir faturamento</a>") == 5
    # the rest of the block: counted and linked to the list filtered to its step and code
    more = ("e mais 15 faturamentos com este erro: https://app.exemplo.com.br/faturamento/faturamentos?entidade=7"
            "&data=2026-11-27&erro=boleto&etapa=boleto&codigo=HTTP_401&utm_source=")
    assert more in text
    assert "E mais 15 faturamentos com este erro." in html


def test_a_cause_that_hit_one_invoice_is_a_card(renderer):
    _, text, html = bodies(renderer, payload())
    assert "- Cliente 4 | R$\xa01.234,56 | Nº FAT-4 | Faturamento automático\n" \
           "  E-mail de cobrança rejeitado (3 tentativas): Código de serviço inválido (E160)\n" in text
    assert "com este erro" not in text.split("== Notificação ao cliente")[1]


def test_each_invoice_of_a_block_shows_what_its_message_adds(renderer):
    bounce = "550 5.1.1 Caixa postal inexistente: "
    block = cause(*[item(i, "charge_email", code="550", message=bounce + address, detail=address)
                    for i, address in ((1, "a@cliente-a.com.br"), (2, "b@cliente-b.com.br"))],
                  message=bounce + "…")
    _, text, html = bodies(renderer, payload(total=2, topics=[topic("notification", "Notificação ao cliente", block)]))
    assert "E-mail de cobrança rejeitado: 550 5.1.1 Caixa postal inexistente: …\n" in text
    assert "| Nº FAT-1 | a@cliente-a.com.br\n" in text and "| Nº FAT-2 | b@cliente-b.com.br\n" in text
    assert "a@cliente-a.com.br" in html and "b@cliente-b.com.br" in html


def test_each_code_is_shown_once(renderer):
    p = payload(total=3, topics=[topic(
        "nfse", "Nota Fiscal",
        cause(item(1, code="E181", message="E181 - Alíquota do ISS inválida para o código de serviço")),
        cause(item(2, "nfse", code="E45", message="CNPJ do tomador inválido")),
        cause(item(3, status="failed", code="http-503", message="Webservice da prefeitura indisponível (HTTP 503)")),
    )])
    _, text, html = bodies(renderer, p)
    for part in (text, html):
        assert "(E181)" not in part and part.count("E181") == 1
        assert "(E45)" in part                               # not in its message: shown
        assert "(http-503)" not in part
    assert "E181 - Alíquota do ISS inválida para o código de serviço\n" in text


def test_billing_type_is_labelled_and_an_older_invoice_says_when_it_was_billed(renderer):
    p = payload(total=3, topics=[topic(
        "notification", "Notificação ao cliente",
        cause(item(1, "overdue_email", billing_date="2026-11-04", billing_type="manual")),
        cause(item(2, "charge_email", billing_date="2026-11-27")),
        cause(item(3, "charge_email", billing_date=None, billing_type=None)),
    )])
    _, text, html = bodies(renderer, p)
    assert "- Cliente 1 | R$\xa01.234,56 | Nº FAT-1 | Faturamento manual | faturado em 04/11/2026\n" in text
    assert "- Cliente 2 | R$\xa01.234,56 | Nº FAT-2 | Faturamento automático\n" in text  # the digest's day
    assert "- Cliente 3 | R$\xa01.234,56 | Nº FAT-3 | data de faturamento não informada\n" in text
    assert "faturado em 04/11/2026" in html and "Faturamento manual" in html
    for bare in ("Automático", "Manual"):
        assert f"| {bare}" not in text and f"· {bare}" not in html


def test_a_block_total_says_how_many_invoices_have_no_amount(renderer):
    block = cause(item(1, amount="100.00"), item(2, amount=None), item(3, amount="0.50"))
    p = payload(total=3, topics=[topic("nfse", "Nota Fiscal", block)])
    _, text, _ = bodies(renderer, p)
    assert "3 faturamentos com este erro · R$\xa0100,50 (1 sem valor informado)" in text
    nothing = cause(item(1, amount=None), item(2, amount=None))
    _, text, _ = bodies(renderer, payload(total=2, topics=[topic("nfse", "Nota Fiscal", nothing)]))
    assert "2 faturamentos com este erro · valor não informado" in text


def test_causes_past_the_topics_budget_are_counted_and_linked(renderer):
    p = payload(total=27, topics=[topic("boleto", "Cobrança (Boleto Bancário)", bank_block(),
                                         other_causes=3, other_errors=7)])
    _, text, html = bodies(renderer, p)
    assert ("... e mais 7 erros de 3 outras causas neste tópico: https://app.exemplo.com.br/faturamento/"
            "faturamentos?entidade=7&data=2026-11-27&erro=boleto&utm_source=") in text
    assert "E mais 7 erros de 3 outras causas neste tópico." in html
    p = payload(total=21, topics=[topic("boleto", "Cobrança (Boleto Bancário)", bank_block(),
                                         other_causes=1, other_errors=1)])  # a new payload: views are cached
    _, text, _ = bodies(renderer, p)
    assert "... e mais 1 erro de 1 outra causa neste tópico" in text


def test_cached_and_spliced_bodies_equal_a_plain_render(renderer):
    recipient = Recipient(5, "Maria", "m@exemplo.com.br")
    p = payload()
    p["topics"][0]["causes"][0]["message"] = "linha com espaço no fim   \t" + "x" * 300
    msg = parse(renderer.message(p, recipient, NOW)[1])
    rendered = renderer.render(p, recipient, NOW)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html




def test_the_intro_says_how_many_causes_the_errors_have(renderer):
    _, text, html = bodies(renderer, payload())       # 4 errors: a block of 2 and two cards
    assert "em 27/11/2026, de 3 causas diferentes." in text
    assert "</strong>, de 3 causas diferentes." in html
    _, text, _ = bodies(renderer, payload(total=20, topics=[topic("boleto", "Cobrança (Boleto Bancário)",
                                                                  bank_block())]))
    assert "em 27/11/2026, todos com a mesma causa." in text
    _, text, _ = bodies(renderer, payload(total=1, topics=[topic("nfse", "Nota Fiscal", cause(item(1)))]))
    assert "em 27/11/2026.\n" in text


def test_a_blocks_list_link_quotes_what_needs_quoting(renderer):
    odd = cause(item(1, code="E 1/2&x"), item(2, code="E 1/2&x"), count=9)
    plain = cause(item(3, "nfse", kind="missing", status=None, code=None), item(4, kind="missing", status=None,
                                                                               code=None), count=9)
    _, text, _ = bodies(renderer, payload(total=18, topics=[topic("nfse", "Nota Fiscal", odd, plain)]))
    assert "&erro=nfse&etapa=nfse&codigo=E+1%2F2%26x&utm_source=" in text
    assert "&erro=nfse&etapa=nfse&utm_source=" in text          # no code: no codigo parameter


def test_the_worst_digest_the_settings_allow_is_not_clipped_by_gmail(renderer):
    """Gmail cuts an HTML part past 102 KB ('[Mensagem cortada]'): the biggest digest stays well below."""
    from devtools.sample_digests import worst_case_payload

    _, text, html = bodies(renderer, worst_case_payload())
    assert len(html.encode()) < 80_000 and len(text.encode()) < 40_000


def test_a_redirected_test_message_is_marked_says_whom_it_was_meant_for_and_has_its_own_message_id(renderer):
    ana = Recipient(5, "Maria Souza", "maria@exemplo.com.br")
    real_id, _ = renderer.message(payload(), ana, NOW)
    test_id, raw = renderer.message(payload(), ana, NOW, envelope_to="teste@fintera.com.br")
    msg = parse(raw)
    assert msg["Subject"] == "[TESTE] Padaria Pão & Cia: 4 erros de faturamento em 27/11/2026"
    assert msg["To"] == "teste@fintera.com.br"
    assert msg["Message-ID"] == test_id != real_id and ".billing-errors-test.2026-11-27.7.5@fintera.com.br>" in test_id
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith("[TESTE] Este é um e-mail de teste. O resumo abaixo seria enviado para Maria Souza "
                           "<maria@exemplo.com.br>.")
    assert "seria enviado para Maria Souza &lt;maria@exemplo.com.br&gt;" in html
    assert "/unsubscribe" not in raw.decode() and "token=" not in msg["List-Unsubscribe"]  # never the real user's
    assert renderer.message(payload(), ana, NOW, envelope_to="teste@fintera.com.br")[0] != test_id  # one per send


@pytest.mark.parametrize(("errors", "expected"), [
    (0, ("Detectamos 0 erros nos", "Corrija-os antes")),
    (1, ("Detectamos 1 erro nos", "Corrija-o antes")),
    (2, ("Detectamos 2 erros nos", "Corrija-os antes")),
])
def test_singular_and_plural_in_the_intro(renderer, errors, expected):
    causes = [cause(item(i), code=f"E{i}", message=f"Erro {i}") for i in range(errors)]
    one = payload(total=errors, topics=[topic("nfse", "Nota Fiscal", *causes)] if causes else [])
    rendered = renderer.render(one, Recipient(5, "Maria", "maria@exemplo.com.br"), NOW)
    for body in (rendered.text, " ".join(rendered.html.split())):
        assert all(e in body for e in expected), body[:400]
