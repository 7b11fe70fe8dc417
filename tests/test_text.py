from billing_digest.text import first_name


def test_first_name_is_the_first_word():
    assert first_name("  Maria   da Silva ") == "Maria"
    assert first_name(None) == "" and first_name("   ") == ""
