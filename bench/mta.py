"""A real MTA's rate limit for bench/pace_bench.py (``--server postfix``): a private postfix instance that
accepts at most ``messages_per_unit`` messages per ``anvil_rate_time_unit`` from one client
(``smtpd_client_message_rate_limit``; past it ``450 4.7.1 Error: too much mail from ...`` at MAIL FROM, and
refused attempts count too) and relays what it accepts to a ``devtools.throttle_sink`` with no limit, which
times and counts the digests (postfix's own log has whole seconds only).

postfix counts per time unit, not per second: anvil keeps one counter per client that restarts with the first
request after a unit has passed (fixed windows). So "R msg/s" here is ``messages_per_unit / unit``, and a
client may send a whole unit's allowance in a burst.

Uses /usr/sbin/postfix when the Debian package is installed; otherwise the package unpacked under
bench/.data/postfix-pkg (``apt-get download postfix`` + ``dpkg-deb -x``: nothing installed system-wide,
daemons run as ``nobody``). Needs root, as tests/mailservers.Postfix (its daemons drop privileges).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import DATA
from devtools import postfix_relay

SYSTEM_POSTFIX = Path("/usr/sbin/postfix")
UNPACKED = DATA / "postfix-pkg"
RATE_WARNING = "Message delivery request rate limit exceeded"  # each refusal logs it once
def package_root() -> Path:
    """``/`` when postfix is installed, else the unpacked Debian package (downloaded once)."""
    if SYSTEM_POSTFIX.exists():
        return Path("/")
    root = UNPACKED / "root"
    if not (root / "usr/sbin/postfix").exists():
        UNPACKED.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "postfix"], cwd=UNPACKED, check=True, capture_output=True)
        deb = sorted(UNPACKED.glob("postfix_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


class RateLimitedPostfix:
    """``with RateLimitedPostfix(port, relay_port, 200, 10) as mta:``; ``mta.refused()`` counts the 450s."""

    def __init__(self, port: int, relay_port: int, messages_per_unit: int, unit_seconds: int):
        if os.getuid() != 0:
            raise RuntimeError("a postfix instance of its own needs root (its daemons drop privileges)")
        self.port, self.relay_port = port, relay_port
        self.messages_per_unit, self.unit_seconds = messages_per_unit, unit_seconds
        self.root = package_root()
        self.dir = Path(tempfile.mkdtemp(prefix="bd-pace-postfix-"))
        self.dir.chmod(0o755)
        self.conf, self.data = self.dir / "conf", self.dir / "data"
        self.env = {**os.environ, "LD_LIBRARY_PATH": str(self.root / "usr/lib/postfix")}

    def _main_cf(self) -> str:
        system = self.root == Path("/")
        owner, privs, group = ("postfix", "nobody", "postdrop") if system else ("nobody", "daemon", "mail")
        return postfix_relay.main_cf(self.dir, self.data, self.relay_port, self.root, owner, group, extra=f"""\
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME \
 LD_LIBRARY_PATH={self.env["LD_LIBRARY_PATH"]}
default_privs = {privs}
# the rate limit under test; by default $mynetworks (127.0.0.1 here) would be exempt from it
anvil_rate_time_unit = {self.unit_seconds}s
smtpd_client_message_rate_limit = {self.messages_per_unit}
smtpd_client_event_limit_exceptions =
""")

    def _postfix(self, *args: str) -> None:
        subprocess.run([str(self.root / "usr/sbin/postfix"), "-c", str(self.conf), *args], check=True, timeout=60,
                       env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> RateLimitedPostfix:
        for d in (self.conf, self.dir / "queue", self.data):
            d.mkdir()
        owner = pwd.getpwnam("postfix" if self.root == Path("/") else "nobody")
        os.chown(self.data, owner.pw_uid, owner.pw_gid)
        (self.conf / "main.cf").write_text(self._main_cf())
        (self.conf / "master.cf").write_text(postfix_relay.master_cf(self.port))
        self._postfix("start")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()[-2000:]}")

    def drain(self, timeout: float = 60) -> None:
        """Wait until every accepted message has been relayed (the queue is empty)."""
        queues = [self.dir / "queue" / q for q in ("maildrop", "incoming", "active", "deferred")]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(f.is_file() for q in queues if q.exists() for f in q.rglob("*")):
            time.sleep(0.2)

    def log(self) -> str:
        path = self.data / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def refused(self) -> int:
        """Refusals for the rate (each logs this warning once)."""
        return self.log().count(RATE_WARNING)

    def __exit__(self, *exc: object) -> None:
        try:
            self._postfix("stop")
        finally:
            self.kept_log = self.log()
            shutil.rmtree(self.dir, ignore_errors=True)
