"""pt-BR formats of what a recipient reads: money (R$ 1.234,56), dates (28/11/2026), CNPJ.

Babel holds the locale's patterns; money uses them without Babel's per-call overhead (see
:class:`_MoneyFormat`), and the tests compare both paths.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

LOCALE = Locale.parse("pt_BR")

CURRENCY = "BRL"


class _MoneyFormat:
    """Babel's pt-BR currency pattern, read once, applied without Babel's per-call overhead.

    ``format_currency`` looks up the locale's data, the currency's name and plural rules on every
    call (~20 µs); a digest shows up to 60 amounts. For the pattern pt-BR has (``¤ #,##0.00``:
    groups of 3, exactly the currency's digits) this does the same with ``str.format``; any other
    pattern, or a value with more decimals than the currency has, goes to ``format_currency``.
    The tests compare both paths.
    """

    def __init__(self, locale: Locale, currency: str):
        pattern = locale.currency_formats["standard"]
        symbols = locale.number_symbols[locale.default_numbering_system]
        symbol = locale.currency_symbols.get(currency, currency)
        self.locale, self.currency = locale, currency
        self.digits = get_currency_precision(currency)
        self.exponent = -self.digits
        self.fast = (pattern.grouping == (3, 3) and pattern.frac_prec == (self.digits, self.digits)
                     and pattern.int_prec[0] == 1 and pattern.exp_prec is None
                     and "%" not in pattern.pattern and "‰" not in pattern.pattern)
        self.prefix = tuple(p.replace("¤", symbol) for p in pattern.prefix)
        self.suffix = tuple(p.replace("¤", symbol) for p in pattern.suffix)
        self.table = str.maketrans({",": symbols["group"], ".": symbols["decimal"]})
        self.spec = f",.{self.digits}f"

    def __call__(self, value: Decimal) -> str:
        if not self.fast or not value.is_finite() or value.as_tuple().exponent < self.exponent:
            return format_currency(value, self.currency, locale=self.locale)
        negative = value.is_signed()  # as Babel: -0.00 keeps its sign
        number = format(-value if negative else value, self.spec).translate(self.table)
        return f"{self.prefix[negative]}{number}{self.suffix[negative]}"


_money = _MoneyFormat(LOCALE, CURRENCY)


def money(amount: str | Decimal | None) -> str:
    """``R$ 1.234,56`` (a non-breaking space after the symbol, as Babel writes it)."""
    if amount is None:
        return "valor não informado"
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        return format_currency(Decimal(str(amount)), CURRENCY, locale=LOCALE)  # raises as before
    return _money(value)


@functools.lru_cache(maxsize=4096)
def date_br(value: str | dt.date | None) -> str:
    """``dd/MM/yyyy``; an ISO string is parsed (payload dates are ISO strings)."""
    if value is None:
        return "data não informada"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return format_date(value, "dd/MM/yyyy", locale=LOCALE)


def cnpj_br(cnpj: str | None) -> str | None:
    """``11.222.333/0001-81`` from 14 digits; anything else is shown as the source has it."""
    digits = re.sub(r"\D", "", cnpj or "")
    if len(digits) != 14:
        return cnpj or None
    return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"
