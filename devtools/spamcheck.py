"""Score digest e-mails with SpamAssassin's local rules, as a receiving mail server would.

    python -m devtools.spamcheck                 # every digest of .demo/outbox (after make demo), worst first
    python -m devtools.spamcheck FILE.eml ...    # these messages

SpamAssassin is Debian's (``apt-get install spamassassin``; .ci/run installs it). Local rules only
(``--test-mode --local``: no DNS blocklists, no network), Bayes off (there is no training data
here), and an empty preferences file in a temporary home, so the machine's ~/.spamassassin is
neither read nor written. tests/mail/test_spam.py keeps the worst digest at or below
:data:`MAX_SCORE`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SPAMASSASSIN = os.environ.get("BILLING_DIGEST_SPAMASSASSIN", "/usr/bin/spamassassin")
MAX_SCORE = 1.0
_POINTS = re.compile(r"^Content analysis details:\s+\((-?[\d.]+) points", re.M)
_RULE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s+(.*)$")


@dataclass(frozen=True)
class Score:
    score: float
    rules: tuple[tuple[str, float, str], ...]   # (rule, points, description), as SpamAssassin lists them

    def fired(self) -> list[str]:
        """The rules that scored (not the informational 0.0 ones), e.g. ``["US_DOLLARS_3 (1.0)"]``."""
        return [f"{name} ({points:g})" for name, points, _ in self.rules if points]

    def report(self) -> str:
        lines = [f"score {self.score:g} (at most {MAX_SCORE:g} wanted)"]
        lines += [f"  {points:5.1f} {name:24} {description}" for name, points, description in self.rules]
        return "\n".join(lines)


def available() -> bool:
    return Path(SPAMASSASSIN).is_file() and os.access(SPAMASSASSIN, os.X_OK)


def score(raw: bytes, timeout: float = 120) -> Score:
    """SpamAssassin's score of one message and the rules that fired."""
    with tempfile.TemporaryDirectory(prefix="bd-spamassassin-") as home:
        prefs = Path(home) / "user_prefs"
        prefs.write_text("use_bayes 0\nbayes_auto_learn 0\n", encoding="ascii")
        done = subprocess.run(
            [SPAMASSASSIN, "--test-mode", "--local", "--prefspath", str(prefs)],
            input=raw, capture_output=True, timeout=timeout, check=False,
            env={**os.environ, "HOME": home})
    if done.returncode != 0:
        raise RuntimeError(f"spamassassin failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    out = done.stdout.decode("utf-8", errors="replace")
    found = _POINTS.search(out)
    if not found:
        raise RuntimeError("no 'Content analysis details' in spamassassin's output")
    table = out[found.end():].split("\n---- ", 1)[1].split("\n", 1)[1]
    rules = []
    for line in table.splitlines():
        if not line.strip():
            break
        match = _RULE.match(line)
        if match:
            rules.append((match.group(2), float(match.group(1)), match.group(3).strip()))
        elif rules:  # a description continued on the next line
            name, points, description = rules[-1]
            rules[-1] = (name, points, f"{description} {line.strip()}")
    return Score(float(found.group(1)), tuple(rules))


def main(argv: list[str]) -> None:
    if not available():
        raise SystemExit(f"no SpamAssassin at {SPAMASSASSIN}: apt-get install spamassassin")
    files = [Path(a) for a in argv] or sorted(Path(".demo/outbox").glob("*.eml"))
    if not files:
        raise SystemExit("no messages: run `make demo` first, or name .eml files")
    scored = sorted(((score(f.read_bytes()), f) for f in files), key=lambda sf: (-sf[0].score, -sf[1].stat().st_size))
    for result, path in scored[:5]:
        print(f"{path} ({path.stat().st_size:,} bytes)\n{result.report()}\n")
    worst = scored[0][0].score
    print(f"{len(scored)} message(s); worst score {worst:g}; "
          f"{sum(1 for s, _ in scored if s.score > MAX_SCORE)} above {MAX_SCORE:g}")
    if worst > MAX_SCORE:
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
