"""The SMTP client and the Airflow connection's meaning of its extras (as the SMTP provider reads them)."""

import email
import email.policy

import pytest

from billing_digest.delivery.smtp import SmtpClient, from_connection_fields
from billing_digest.delivery.smtp_replies import PermanentError, SmtpUnavailable, TransientError
from devtools.smtp_sink import SmtpSink
from devtools.throttle_sink import RateGate
from tests.tls import make_cert, server_context

MESSAGE = b"From: a@b.com\r\nTo: c@d.com\r\nSubject: oi\r\n\r\n.linha com ponto\r\nfim\r\n"


def test_a_connection_without_extras_means_implicit_tls_on_465_like_the_provider():
    s = from_connection_fields("smtp.exemplo.com", None, "user", "pw", {})
    assert (s.use_ssl, s.use_starttls, s.port, s.verify_tls, s.timeout) == (True, False, 465, True, 30.0)
    s = from_connection_fields("smtp.exemplo.com", 587, None, None, {"disable_ssl": "true"})
    assert (s.use_ssl, s.use_starttls, s.port) == (False, True, 587)
    s = from_connection_fields(None, None, None, None, {"disable_ssl": True, "disable_tls": True, "timeout": "5"})
    assert (s.use_ssl, s.use_starttls, s.port, s.host, s.timeout) == (False, False, 25, "localhost", 5.0)
    assert not from_connection_fields("h", 1, None, None, {"ssl_context": "none"}).verify_tls
    assert "pw" not in repr(from_connection_fields("h", 1, "u", "pw", {}))


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_421_closes_the_connection_and_the_next_message_connects_again_at_once(smtp_sink, stage):
    gate = RateGate(rate=0, reply="421 4.3.2 Service shutting down", refuse_nth={1})
    setattr(smtp_sink.faults, f"on_{stage}", gate)
    with SmtpClient(from_connection_fields("127.0.0.1", smtp_sink.port, None, None,
                                           {"disable_ssl": True, "disable_tls": True})) as client:
        with pytest.raises(TransientError, match="421"):
            client.send("a@b.com", "c@d.com", MESSAGE)
        client.send("a@b.com", "c@d.com", MESSAGE)  # no "connection lost" first: the closed one was dropped
        assert client.connections == 2
    assert len(smtp_sink.messages) == 1


def test_the_default_connection_sends_over_implicit_tls_and_checks_the_certificate(tmp_path):
    cert, key = make_cert(tmp_path)
    with SmtpSink(ssl_context=server_context(cert, key)) as sink:
        untrusted = from_connection_fields("localhost", sink.port, None, None, {"timeout": 5})
        with pytest.raises(SmtpUnavailable, match="CERTIFICATE_VERIFY_FAILED"), SmtpClient(untrusted) as client:
            client.send("a@b.com", "c@d.com", MESSAGE)
        trusted = from_connection_fields("localhost", sink.port, None, None, {"timeout": 5, "ca_file": str(cert)})
        with SmtpClient(trusted) as client:
            client.send("a@b.com", "c@d.com", MESSAGE)
    assert [m.rcpt_tos for m in sink.messages] == [["c@d.com"]]
    body = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default).get_content()
    assert body.startswith(".linha com ponto")  # dot-stuffed on the wire, restored by the server


def test_replies_are_classified_permanent_or_transient(smtp_sink):
    smtp_sink.faults.on_rcpt = lambda a: "550 5.1.1 no such user" if a.startswith("gone") else "451 4.3.0 later"
    with SmtpClient(from_connection_fields("127.0.0.1", smtp_sink.port, None, None,
                                           {"disable_ssl": True, "disable_tls": True})) as client:
        with pytest.raises(PermanentError, match="550"):
            client.send("a@b.com", "gone@d.com", MESSAGE)
        with pytest.raises(TransientError, match="451"):
            client.send("a@b.com", "busy@d.com", MESSAGE)
        assert client.connections == 1  # a refusal keeps the connection
