"""Where things live in the product (paths under ``base_url``), stated once.

The digest links into the product (an invoice, the filtered list of a day's errors, the
notification preferences) and the product mounts the one-click unsubscribe service; every such
path is here, and tests/test_one_place.py keeps it from being restated elsewhere.
"""

from __future__ import annotations

INVOICES = "/faturamento/faturamentos"          # the invoices list; filtered with entidade, data, erro, etapa, codigo
PREFERENCES = "/meu-perfil/notificacoes"         # where a user turns alerts on and off
UNSUBSCRIBE_MOUNT = "/notificacoes"              # where the product mounts the unsubscribe service
UNSUBSCRIBE_ROUTE = "/cancelar"                  # the service's one-click route, under its mount
HEALTH_ROUTE = "/healthz"                        # the service's health check, under its mount
UNSUBSCRIBE_PATH = UNSUBSCRIBE_MOUNT + UNSUBSCRIBE_ROUTE


def invoice_path(invoice_id: int | str) -> str:
    """An invoice's page, when the source gives no path of its own."""
    return f"{INVOICES}/{invoice_id}"
