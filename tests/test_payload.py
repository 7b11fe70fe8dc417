"""The stored digest's typed model: what the transform writes is what payload.py and the docs say."""

import datetime as dt
import json
import re
import typing

import pandas as pd
from conftest import ROOT

from billing_digest import assemble, payload, transform

MODELS = (payload.EntityDigest, payload.EntityInfo, payload.TopicDigest, payload.CauseDigest, payload.CauseGuide,
          payload.ErrorItem)


def documented_fields(name: str) -> list[str]:
    """Field names of the table under ``### `name``` in docs/data-model.md."""
    text = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    section = text[text.index(f"### `{name}`"):].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.M)


def test_every_field_of_the_model_is_documented_and_nothing_else():
    for model in MODELS:
        assert documented_fields(model.__name__) == list(typing.get_type_hints(model)), model.__name__


def test_the_transform_writes_exactly_the_model_and_it_survives_json():
    errors = pd.DataFrame([{
        "invoice_id": 1, "step": "boleto", "kind": "failed", "status": "rejected", "entity_id": 7,
        "entity_name": "Acme", "entity_cnpj": "11222333000181", "customer_name": "Cliente", "invoice_number": "F-1",
        "amount": "10.5", "billing_date": dt.date(2026, 11, 27), "billing_type": "manual", "invoice_path": "/f/1",
        "error_code": "E1", "error_message": "recusado", "attempts": 2, "last_attempt_at": None}])
    problems = transform.Problems()
    built = assemble.build_entity_digests(transform.prepare_errors(errors, problems), dt.date(2026, 11, 27), 20, 5)
    digest = json.loads(json.dumps(built[7]))
    assert set(digest) == set(typing.get_type_hints(payload.EntityDigest))
    assert set(digest["entity"]) == set(typing.get_type_hints(payload.EntityInfo))
    topic = digest["topics"][0]
    assert set(topic) == set(typing.get_type_hints(payload.TopicDigest))
    cause = topic["causes"][0]
    assert set(cause) == set(typing.get_type_hints(payload.CauseDigest))
    assert set(cause["invoices"][0]) == set(typing.get_type_hints(payload.ErrorItem))
    assert cause["invoices"][0]["amount"] == "10.50" and cause["invoices"][0]["billing_date"] == "2026-11-27"
    assert cause["amount_total"] == "10.50" and cause["count"] == 1
