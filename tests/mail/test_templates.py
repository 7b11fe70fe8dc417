"""Loading the e-mail templates: CSS inlined without touching Jinja statements."""

from billing_digest.mail.templates import inline_css


def test_inline_css_keeps_jinja_statements_even_inside_tables():
    source = ("<table><tr><td class='a'>x</td></tr>{% for r in rows %}"
              "<tr><td class='a'>{{ r }}</td></tr>{% endfor %}</table>")
    out = inline_css(source, ".a { color: red; }", fragment=True)
    assert out.index("{% for r in rows %}") < out.index("{{ r }}") < out.index("{% endfor %}")
    assert out.count('style="color: red;"') == 2
