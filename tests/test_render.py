import datetime as dt
import email
import email.policy
import re

import pytest

from billing_digest import mime
from billing_digest.render import Recipient, Renderer, cnpj_br, date_br, inline_css, money
from billing_digest.settings import Settings
from billing_digest.unsubscribe import verify

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def item(i, topic_step="nfse", **kw):
    base = {"invoice_id": i, "number": f"FAT-{i}", "customer": f"Cliente {i}", "amount": "1234.56",
            "billing_date": "2026-11-27", "billing_type": "automatic", "step": topic_step, "kind": "failed",
            "status": "rejected", "code": "E160", "message": "Código de serviço inválido", "attempts": 1,
            "path": f"/faturamento/faturamentos/{i}"}
    base.update(kw)
    return base


def payload(**kw):
    p = {"digest_date": "2026-11-27", "entity": {"id": 7, "name": "Padaria Pão & Cia", "cnpj": "11222333000181"},
         "total": 4, "topics": [
             {"code": "nfse", "title": "Nota Fiscal", "total": 2, "more": 0, "items": [item(1), item(2)]},
             {"code": "boleto", "title": "Cobrança (Boleto Bancário)", "total": 1, "more": 0,
              "items": [item(3, "boleto", kind="missing", status=None, amount=None, billing_type="manual")]},
             {"code": "notification", "title": "Notificação ao cliente", "total": 1, "more": 0,
              "items": [item(4, "charge_email", status="rejected", attempts=3)]},
         ]}
    p.update(kw)
    return p


@pytest.fixture(scope="module")
def renderer():
    return Renderer(Settings(unsubscribe_secret="s3cret", base_url="https://app.exemplo.com.br/"))


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_pt_br_formats():
    assert money("1234.5") == "R$\xa01.234,50"
    assert money("0.1") == "R$\xa00,10"
    assert money(None) == "valor não informado"
    assert date_br("2026-11-28") == "28/11/2026"
    assert cnpj_br("11222333000181") == "11.222.333/0001-81"


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


def test_headers_cannot_be_injected(renderer):
    raw = renderer.message(payload(entity={"id": 7, "name": "ACME\r\nBcc: evil@x.com", "cnpj": None}),
                           Recipient(5, "Maria\r\nBcc: evil@x.com", "m@exemplo.com.br"), NOW)[1]
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert not re.search(r"^Bcc:", head, re.M)
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert len(msg["To"].addresses) == 1
    with pytest.raises(ValueError):
        mime.address("x", "a@b.com\r\nBcc: evil@x.com, c@d.com")


def test_automated_sender_headers_and_one_click_unsubscribe(renderer):
    msg = parse(renderer.message(payload(), Recipient(5, "Maria", "m@exemplo.com.br"), NOW)[1])
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Id"] == "Erros de faturamento <billing_errors.fintera.com.br>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Date"]
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert mailto.startswith("mailto:suporte@fintera.com.br")
    token = re.search(r"token=([^&]+)", https).group(1)
    unsub = verify("s3cret", token.replace("%2F", "/").replace("%3D", "="), now=NOW.timestamp(), expected_user_id=5)
    assert (unsub.user_id, unsub.kind) == (5, "billing_errors")


def test_non_ascii_subject_is_rfc2047_encoded_ascii_on_the_wire(renderer):
    raw = renderer.message(payload(entity={"id": 7, "name": "Ótica São João " * 8, "cnpj": None}),
                           Recipient(5, "Conceição", "c@exemplo.com.br"), NOW)[1]
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    msg = parse(raw)
    assert msg["Subject"].startswith("Ótica São João Ótica São João")
    assert msg["To"].addresses[0].display_name == "Conceição"


def test_cached_and_spliced_bodies_equal_a_plain_render(renderer):
    recipient = Recipient(5, "Maria", "m@exemplo.com.br")
    p = payload()
    p["topics"][0]["items"][0]["message"] = "linha com espaço no fim   \t" + "x" * 300
    msg = parse(renderer.message(p, recipient, NOW)[1])
    rendered = renderer.render(p, recipient, NOW)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == rendered.html


def test_inline_css_keeps_jinja_statements_even_inside_tables():
    source = ("<table><tr><td class='a'>x</td></tr>{% for r in rows %}"
              "<tr><td class='a'>{{ r }}</td></tr>{% endfor %}</table>")
    out = inline_css(source, ".a { color: red; }", fragment=True)
    assert out.index("{% for r in rows %}") < out.index("{{ r }}") < out.index("{% endfor %}")
    assert out.count('style="color: red;"') == 2
