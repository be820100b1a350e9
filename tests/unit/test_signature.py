import re

import pytest

from tests.harness import FIXTURES, present
from webhook_app.signature import SignatureError, sign, verify


def _known_answer() -> tuple[str, bytes, str]:
    text = (FIXTURES / "signatures" / "pywa_sha256_real_meta_signed.txt").read_text()
    secret = present(re.search(r"app_secret:\s+'([^']+)'", text)).group(1)
    expected = present(re.search(r"expected_header:\s+(\S+)", text)).group(1)
    body = (FIXTURES / "signatures" / "pywa_whatsapp_real_signed_body.bin").read_bytes()
    return secret, body, expected


def test_known_answer_from_a_real_meta_delivery():
    secret, body, expected = _known_answer()
    assert len(body) == 511
    assert sign(secret, body) == expected
    verify(body, expected, ["some-other-secret", secret])


def test_any_of_several_secrets_verifies():
    body = b'{"object":"page","entry":[]}'
    verify(body, sign("instagram-secret", body), ["meta-secret", "instagram-secret"])


@pytest.mark.parametrize("header, reason", [
    (None, "missing"), ("", "missing"), ("sha1=abc", "malformed"),
    ("sha256=" + "0" * 63, "malformed"), ("sha256=" + "0" * 64, "matches no"),
])
def test_bad_headers_are_rejected_with_a_precise_reason(header, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(b"{}", header, ["secret"])


def test_signature_is_over_raw_bytes_not_reserialised_json():
    raw = (FIXTURES / "webhooks" / "m4j_template_echo_receipt_escaped_slashes.json").read_bytes()
    assert b"\\/" in raw
    header = sign("secret", raw)
    verify(raw, header, ["secret"])
    with pytest.raises(SignatureError):
        verify(raw.replace(b"\\/", b"/"), header, ["secret"])


def test_uppercase_hex_is_accepted():
    body = b'{"entry":[]}'
    verify(body, "sha256=" + sign("s", body)[7:].upper(), ["s"])
