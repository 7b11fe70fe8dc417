"""Text helpers: the greeting's first name, and the one gate for untrusted text (issue 15)."""

import pytest

from billing_digest.text import first_name, neutralise


def test_first_name_is_the_first_word():
    assert first_name("  Maria   da Silva ") == "Maria"
    assert first_name(None) == "" and first_name("   ") == ""


def test_first_name_is_neutralised():
    assert first_name("\u202eairaM da Silva") == "airaM"
    assert first_name("\x1b[31mMaria\x1b[0m") == "Maria"


@pytest.mark.parametrize("hostile,expected", [
    ("a\x1b[31mred\x1b[0m b", "ared b"),                              # CSI (SGR colours), whole
    ("a\x1b[2J\x1b[1;1Hb", "ab"),                                     # CSI with parameters: clear screen
    ("x\x1b]0;title\x07y", "xy"),                                     # OSC ended by BEL
    ("x\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\z", "xlinkz"),      # OSC 8 hyperlink ended by ST
    ("x\x1bP1$r0m\x1b\\y", "xy"),                                     # DCS
    ("\x9b31mC1 CSI", "C1 CSI"),                                      # the 8-bit CSI
    ("a\x1b(Bb", "ab"), ("\x1bcreset", "reset"),                      # other escapes: charset, reset
    ("unterminated \x1b]0;title", "unterminated "),                   # OSC never ended: to the end
    ("lone ESC \x1b", "lone ESC "),
    ("boleto\u202efdp.exe", "boletofdp.exe"),                         # RLO (right-to-left override)
    ("\u2066R$ 10\u2069 \u2067x\u2069 \u2068y\u2069", "R$ 10 x y"),   # isolates
    ("\u202aa\u202bb\u202cc\u202dd", "abcd"),                         # embeddings, PDF, LRO
    ("1\u200e2\u200f3\u061c4", "1234"),                               # implicit marks LRM, RLM, ALM
    ("a\tb\nc\rd\x00e\x7ff\x85g\u2028h\ufeffi", "a b c d e f g h i"),  # C0, DEL, C1, separators, BOM
    ("a\x01\x02\x03b", "a b"),                                        # a run of controls: one space
])
def test_hostile_text_is_neutralised(hostile, expected):
    assert neutralise(hostile) == expected


@pytest.mark.parametrize("text", [
    "Rejeição 539: duplicidade de NF-e", "Cliente <b>& Cia</b> {{ x }} {% if %}", "São Paulo — açúcar ☕",
    "emoji with joiner 👩\u200d💻", "", "שלום עולם",  # right-to-left letters themselves stay
])
def test_ordinary_text_is_unchanged(text):
    assert neutralise(text) == text


def test_line_breaks_can_be_kept():
    assert neutralise("a\r\nb\rc\nd\x1b[1m!\u202e", keep_line_breaks=True) == "a\nb\nc\nd!"
    assert neutralise("a\tb\x00c", keep_line_breaks=True) == "a b c"
