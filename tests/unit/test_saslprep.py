"""SASLprep (RFC 4013) against the RFC's own examples (section 3), and the checks around them."""

import re

import pytest

from proftpy.auth.saslprep import SaslprepError, saslprep, stable


@pytest.mark.parametrize("given, prepared", [
    ("I\u00adX", "IX"),             # SOFT HYPHEN mapped to nothing
    ("user", "user"),               # no transformation
    ("USER", "USER"),               # case preserved, will not match #2
    ("\u00aa", "a"),                # output is NFKC, input in ISO 8859-1
    ("\u2168", "IX"),               # output is NFKC, will match #1
    ("a\u00a0b", "a b"),            # a non-ASCII space becomes a space
    ("pa\u0308sswo\u0308rd", "pässwörd"),   # composed by NFKC
    ("\u0627\u0628\u0031\u0628", "\u0627\u0628\u0031\u0628"),  # right-to-left, starting and ending so
])
def test_rfc4013_examples(given, prepared):
    assert saslprep(given) == prepared


@pytest.mark.parametrize("given, why", [
    ("\u0007", "prohibited character U+0007"),            # RFC 4013's example 6: a control character
    ("\u0627\u0031", "must start and end"),               # RFC 4013's example 7: bidirectional check
    ("\u0627a\u0628", "mixes right-to-left"),
    ("pass\ud800", "prohibited character U+D800"),        # a surrogate (what surrogateescape leaves)
    ("\ue000", "prohibited character U+E000"),            # private use
])
def test_rfc4013_errors(given, why):
    with pytest.raises(SaslprepError, match=re.escape(why)):
        saslprep(given)


def test_unassigned_code_points_only_in_stored_strings():
    unassigned = "\u0221"                   # unassigned in Unicode 3.2, the version RFC 3454 uses
    assert saslprep(unassigned) == unassigned
    with pytest.raises(SaslprepError, match="U\\+0221"):
        saslprep(unassigned, stored=True)


def test_stable():
    assert stable("ftpbind-secret") and stable("pässwörd")
    assert not stable("I\u00adX") and not stable("pa\u0308sswo\u0308rd") and not stable("\u0007")
