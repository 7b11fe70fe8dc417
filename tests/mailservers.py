"""Real mail servers started per test, on free ports, in their own temporary directories:
Dovecot (IMAP, the bounce mailbox) and postfix (the relay that accepts a digest, fails to deliver it
and mails back a delivery status notification). Both need their Debian packages (``dovecot-imapd``,
``postfix``; .ci/run installs them); postfix also needs root (its daemons drop to the ``postfix`` user).
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import missing_system_tool  # pytest's module: importing tests.conftest would run it twice

from devtools import postfix_relay
from devtools.smtp_sink import free_port

DOVECOT, POSTFIX = "/usr/sbin/dovecot", "/usr/sbin/postfix"


def _wait_port(port: int, what: str, log: Path, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}: {log.read_text() if log.exists() else '(no log)'}")


def _public_tmpdir(prefix: str) -> Path:
    """A directory the servers' unprivileged users can reach (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


class Dovecot:
    """One Dovecot serving IMAP on ``port`` for one user (plaintext login, no TLS: tests only)."""

    def __init__(self, user: str = "bounces", password: str = "bounce-pass"):
        if not Path(DOVECOT).exists():
            missing_system_tool("dovecot", f"{DOVECOT} is not installed (Debian package dovecot-imapd)")
        self.user, self.password = user, password
        self.port = free_port()
        self.dir = _public_tmpdir("bd-dovecot-")
        self.log = self.dir / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        owner = pwd.getpwuid(os.getuid()) if os.getuid() else pwd.getpwnam("dovecot")
        mail = self.dir / "mail"
        mail.mkdir()
        os.chown(mail, owner.pw_uid, owner.pw_gid)
        (self.dir / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        conf = self.dir / "dovecot.conf"
        conf.write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {owner.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={owner.pw_uid} gid={owner.pw_gid} home={mail}/%u
}}
mail_location = maildir:{mail}/%u/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        return conf

    def __enter__(self) -> Dovecot:
        conf = self._config()
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.log.with_suffix(".stderr"), "wb"))
        _wait_port(self.port, "dovecot", self.log.with_suffix(".stderr"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(self.user, self.password)
        try:
            yield client
        finally:
            client.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """A message delivered into ``folder`` (what the MTA's local delivery agent would do)."""
        with self.client() as c:
            typ, data = c.append(folder, None, None, raw)
            assert typ == "OK", data

    def count(self, folder: str) -> int:
        with self.client() as c:
            typ, data = c.select(folder, readonly=True)
            return int(data[0]) if typ == "OK" else -1

    def airflow_connection(self) -> dict[str, object]:
        return {"conn_type": "imap", "host": "127.0.0.1", "port": self.port, "login": self.user,
                "password": self.password, "extra": {"use_ssl": False}}


class Postfix:
    """One postfix accepting SMTP on ``port`` and relaying everything to 127.0.0.1:``relay_port``,
    trying each message once (``maximal_queue_lifetime = 0``), so a 4xx or 5xx from the relay makes
    it mail a delivery status notification (RFC 3464) back to the envelope sender at once."""

    def __init__(self, relay_port: int):
        if not Path(POSTFIX).exists():
            missing_system_tool("postfix", f"{POSTFIX} is not installed (Debian package postfix)")
        if os.getuid() != 0:
            missing_system_tool("postfix", "a postfix instance of its own needs root (its daemons drop privileges)")
        self.port, self.relay_port = free_port(), relay_port
        self.dir = _public_tmpdir("bd-postfix-")
        self.conf = self.dir / "conf"

    def _postfix(self, *args: str) -> None:
        # postfix reports on a terminal or syslog only: its own log file says why a start failed.
        subprocess.run([POSTFIX, "-c", str(self.conf), *args], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Postfix:
        data = self.dir / "data"
        for d in (self.conf, self.dir / "queue", data):
            d.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
        (self.conf / "main.cf").write_text(postfix_relay.main_cf(self.dir, data, self.relay_port, extra="""\
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
delay_warning_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""))
        (self.conf / "master.cf").write_text(postfix_relay.master_cf(self.port))
        self._postfix("start")
        _wait_port(self.port, "postfix", data / "maillog")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._postfix("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
