"""A private postfix instance's configuration (no system-wide install touched): accepts SMTP on
127.0.0.1 and relays everything to a local SMTP server. Shared by the bounce tests
(tests/mailservers.py: a relay that fails deliveries and mails DSNs back) and the pace benchmark
(bench/mta.py: a relay with postfix's own rate limit)."""

from __future__ import annotations

from pathlib import Path

#: master.cf's services besides smtpd (postfix's defaults, trimmed to what a relay uses).
SERVICES = ["pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap", "smtp unix - - n - - smtp", "relay unix - - n - - smtp",
            "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
            "discard unix - - n - - discard", "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd"]


def master_cf(port: int) -> str:
    return "\n".join([f"127.0.0.1:{port} inet n - n - - smtpd", *SERVICES]) + "\n"


def main_cf(instance: Path, data: Path, relay_port: int, root: Path = Path("/"), owner: str = "postfix",
            setgid_group: str = "postdrop", extra: str = "") -> str:
    """main.cf of an instance living in ``instance`` (queue) and ``data`` (log), postfix's files under ``root``."""
    return f"""
compatibility_level = 3.6
queue_directory = {instance}/queue
data_directory = {data}
maillog_file_prefixes = {instance}
maillog_file = {data}/maillog
command_directory = {root / "usr/sbin"}
daemon_directory = {root / "usr/lib/postfix/sbin"}
shlib_directory = {root / "usr/lib/postfix"}
meta_directory = {root / "etc/postfix"}
mail_owner = {owner}
setgid_group = {setgid_group}
myhostname = mta.billing-digest.test
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = yes
{extra}"""
