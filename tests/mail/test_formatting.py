"""pt-BR formats of what a recipient reads."""

from decimal import Decimal

import pytest
from babel.numbers import format_currency

from billing_digest.mail.formatting import LOCALE, cnpj_br, date_br, money


def test_pt_br_formats():
    assert money("1234.5") == "R$\xa01.234,50"
    assert money("0.1") == "R$\xa00,10"
    assert money(None) == "valor não informado"
    assert date_br("2026-11-28") == "28/11/2026"
    assert cnpj_br("11222333000181") == "11.222.333/0001-81"


@pytest.mark.parametrize("amount", ["0", "0.01", "-0.00", "-1234.5", "999.99", "1000", "1234567.89",
                                    "12345678901234.56", "1.005", "7.1"])
def test_the_fast_money_path_equals_babel(amount):
    assert money(amount) == format_currency(Decimal(amount), "BRL", locale=LOCALE)


def test_cnpj_other_than_14_digits():
    assert cnpj_br("123") == "123" and cnpj_br(None) is None
