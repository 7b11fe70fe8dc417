"""The digest as a receiving mail server's spam filter sees it: SpamAssassin (Debian's, local rules
only) scores the worst digest at most 1.0, and says which rules fired when it does not."""

from __future__ import annotations

import pytest
from conftest import missing_system_tool

from billing_digest.mail.render import Recipient, Renderer
from billing_digest.settings import Settings
from devtools import spamcheck
from devtools.sample_digests import sample_payload, worst_case_payload
from tests.digests import NOW


@pytest.fixture(scope="module", autouse=True)
def _need_spamassassin() -> None:
    if spamcheck.available():
        return
    missing_system_tool("the spam test", f"no SpamAssassin at {spamcheck.SPAMASSASSIN} (apt-get install spamassassin)")


@pytest.mark.parametrize("name,build", [("worst case", worst_case_payload), ("a realistic day", sample_payload)])
def test_the_digest_scores_at_most_1_in_spamassassin(name, build):
    payload = build()
    _, raw = Renderer(Settings()).message(payload, Recipient(5, "Maria da Conceição Souza",
                                                             "maria.souza@padariapaoecia.com.br"), NOW)
    result = spamcheck.score(raw)
    print(f"{name}: {result.report()}")
    assert result.score <= spamcheck.MAX_SCORE, f"{name}: rules fired: {', '.join(result.fired())}\n{result.report()}"


def test_the_worst_case_is_the_biggest_digest_the_settings_allow():
    """What the spam test scores: every topic lists its whole budget, with blocks, cards and 'e mais'."""
    settings = Settings()
    payload = worst_case_payload(settings.max_items_per_topic, settings.max_invoices_per_cause)
    assert [t["code"] for t in payload["topics"]] == ["nfse", "boleto", "notification"]
    for topic in payload["topics"]:
        listed = sum(len(c["invoices"]) for c in topic["causes"])
        assert listed == settings.max_items_per_topic or topic["other_causes"] == 0
        big = [c for c in topic["causes"] if c["count"] == 30]  # shown after company-level fixes (issue 19)
        assert len(big) == 1 and big[0]["more"] > 0
        assert any(c["count"] == 1 for c in topic["causes"])
    assert sum(t["other_causes"] for t in payload["topics"]) > 0
    # Every kind of guide, and one guide over several blocks ("igual ao item acima").
    fixes = [c["guide"]["fix"] for t in payload["topics"] for c in t["causes"]]
    assert {"company", "invoice", "none"} <= set(fixes)
    ids = [c["guide"]["id"] for c in payload["topics"][0]["causes"]]
    assert len(ids) > len(set(ids))
