"""A real OpenLDAP server for mod_ldap's tests and scripts/compare_proftpd.py: Debian's slapd with a configuration
of its own (slapd.conf, an mdb database) in a temporary directory, listening on free loopback ports (ldap://, and
ldaps:// with a throwaway certificate for 127.0.0.1 and localhost), loaded with slapadd before it starts, stopped by
its pid.

SASL binds (LDAPUseSASL): slapd's own Cyrus SASL, with Debian's libsasl2-modules (SCRAM-SHA-*, DIGEST-MD5, CRAM-MD5,
and PLAIN and LOGIN on TLS), reads the password from the directory: `authz-regexp` maps a SASL name (with or without
a realm) to `cn=<name>,dc=example,dc=com`, and `sasl_account` is such an entry, its userPassword in clear text (what
the shared-secret mechanisms need). No sasldb file, no system configuration. EXTERNAL: slapd asks for a client
certificate (not required, but a bad one ends the handshake: `TLSVerifyClient try`; with `allow` slapd takes an
untrusted certificate's subject as the identity) and maps its subject `cn=<name>` the same way; `client_cert` and
`client_key` are one for `cn=ftpclient` from the test CA, `stranger_cert`/`stranger_key` a self-signed one."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ports import free_port
from server_process import ServerProcess

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PW = "admin-secret"
PEOPLE = f"ou=people,{SUFFIX}"
SASL_NAME, SASL_PW = "ftpbind", "ftpbind-secret"        # the SASL account: its authentication id and password
SASL_DN = f"cn={SASL_NAME},{SUFFIX}"
# a second SASL account whose password is not ASCII and changes under SASLprep (RFC 4013: the soft hyphen goes):
# libsasl2 on both sides hashes it as typed, so it binds only as typed
UNI_NAME, UNI_PW = "ftpuni", "p\u00e4ssw\u00f6rd-I\u00adX"
CLIENT_NAME = "ftpclient"                               # SASL EXTERNAL: the client certificate's subject cn
GROUPS = f"ou=groups,{SUFFIX}"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include {dir}/proftpy-test.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
authz-regexp "^uid=([^,]*)(,cn=[^,]*)?,cn=[^,]*,cn=auth$" "cn=$1,{suffix}"
authz-regexp "^cn=([^,]*)$" "cn=$1,{suffix}"
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem
TLSCACertificateFile {dir}/ca.pem
TLSVerifyClient try
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {dir}/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
"""

# What slapd's own schemas lack: mod_quotatab_ldap's ftpQuota and ftpQuotaProfileDN (the OIDs are this test's own,
# under an arc no one uses) and openssh-lpk's sshPublicKey/ldapPublicKey (its published OIDs), for mod_ldap's quota
# and SSH key lookups.
SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.7.1.1 NAME 'ftpQuota' DESC 'mod_quotatab_ldap limit record'
  EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.7.1.2 NAME 'ftpQuotaProfileDN' DESC 'an entry holding the ftpQuota to use'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.7.2.1 NAME 'ftpQuotaAccount' SUP top AUXILIARY MAY ( ftpQuota $ ftpQuotaProfileDN ) )
objectclass ( 1.3.6.1.4.1.99999.7.2.2 NAME 'ftpQuotaProfile' SUP top STRUCTURAL MUST cn MAY ftpQuota )
attributetype ( 1.3.6.1.4.1.24552.500.1.1.1.13 NAME 'sshPublicKey' DESC 'OpenSSH public key'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
objectclass ( 1.3.6.1.4.1.24552.500.1.1.2.0 NAME 'ldapPublicKey' SUP top AUXILIARY MAY ( sshPublicKey $ uid ) )
"""


def available() -> bool:
    return os.path.exists(SLAPD) and os.path.exists(SLAPADD)


def ssha(password: str, salt: bytes = b"salt1234") -> str:
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def sha(password: str) -> str:
    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


def md5(password: str) -> str:
    return "{MD5}" + base64.b64encode(hashlib.md5(password.encode()).digest()).decode()


def crypt(password: str) -> str:
    from proftpy.auth.crypt import crypt_hash
    return "{CRYPT}" + crypt_hash(password, "sha512")


@dataclass
class User:
    name: str
    password: str                       # the userPassword value
    uid: int | None = None              # None: no uidNumber
    gid: int | None = None
    home: str | None = None             # None: no homeDirectory
    shell: str | None = "/bin/sh"
    posix: bool = True                  # objectClass posixAccount (else inetOrgPerson only)
    extra: dict = field(default_factory=dict)   # attribute -> a value, or a list of values
    classes: tuple[str, ...] = ()       # more (auxiliary) object classes: ftpQuotaAccount, ldapPublicKey


@dataclass
class PosixGroup:
    name: str
    gid: int
    members: tuple[str, ...] = ()


def escape_dn(value: str) -> str:
    out = []
    for i, c in enumerate(value):
        out.append("\\" + c if c in ',+"\\<>;=' or (c in "# " and i == 0) else c)
    return "".join(out)


def ldif_value(name: str, value: str) -> str:
    if value != value.strip() or any(ord(c) > 126 or ord(c) < 32 for c in value) or value[:1] in ":<":
        return f"{name}:: {base64.b64encode(value.encode()).decode()}"
    return f"{name}: {value}"


def ldif(users: list[User], groups: list[PosixGroup], under: str = SUFFIX) -> str:
    """The entries: the suffix itself (`under` is SUFFIX) or an organizationalUnit `under` it, then its ou=people
    (the users) and ou=groups (posixGroups)."""
    if under == SUFFIX:
        out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: example\ndc: example\n"]
    else:
        out = [f"dn: {under}\nobjectClass: organizationalUnit\nou: {under.split(',')[0].split('=')[1]}\n"]
    people, groups_dn = f"ou=people,{under}", f"ou=groups,{under}"
    out += [f"dn: {people}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {groups_dn}\nobjectClass: organizationalUnit\nou: groups\n"]
    for u in users:
        lines = [ldif_value("dn", f"uid={escape_dn(u.name)},{people}"), "objectClass: inetOrgPerson"]
        if u.posix:
            lines.append("objectClass: posixAccount")
        lines += [f"objectClass: {c}" for c in u.classes]
        lines += [ldif_value("uid", u.name), ldif_value("cn", u.name), ldif_value("sn", u.name),
                  ldif_value("userPassword", u.password)]
        for attr, value in (("uidNumber", u.uid), ("gidNumber", u.gid), ("homeDirectory", u.home),
                            ("loginShell", u.shell)):
            if value is not None and (u.posix or attr != "loginShell"):
                lines.append(ldif_value(attr, str(value)))
        for attr, value in u.extra.items():
            lines += [ldif_value(attr, str(v)) for v in (value if isinstance(value, (list, tuple)) else [value])]
        out.append("\n".join(lines) + "\n")
    for g in groups:
        lines = [f"dn: cn={g.name},{groups_dn}", "objectClass: posixGroup", f"cn: {g.name}", f"gidNumber: {g.gid}"]
        lines += [ldif_value("memberUid", m) for m in g.members]
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def sasl_account(name: str = SASL_NAME, password: str = SASL_PW) -> str:
    """LDIF of an entry the SASL name `name` authenticates as (see the module's docstring)."""
    return (f"dn: cn={name},{SUFFIX}\nobjectClass: person\ncn: {name}\nsn: {name}\n"
            f"{ldif_value('userPassword', password)}\n")


def add_entries(url: str, text: str, directory: Path) -> None:
    """Entries added to a running server (ldapadd, as the rootdn)."""
    path = directory / "add.ldif"
    path.write_text(text)
    subprocess.run(["ldapadd", "-x", "-H", url, "-D", ADMIN_DN, "-w", ADMIN_PW, "-f", str(path)], check=True,
                   capture_output=True, timeout=30)


@dataclass
class Slapd(ServerProcess):
    """One running slapd: `port` (ldap://), `tls_port` (ldaps://), `ca` (the certificate to trust)."""

    dir: Path
    port: int = 0
    tls_port: int = 0
    proc: subprocess.Popen | None = None
    stop_wait = 10.0

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    client_cert = property(lambda self: self.dir / "client.pem")
    client_key = property(lambda self: self.dir / "client-key.pem")
    stranger_cert = property(lambda self: self.dir / "stranger.pem")
    stranger_key = property(lambda self: self.dir / "stranger-key.pem")

    def _certificates(self) -> None:
        """A throwaway CA (ca.pem) and the server's certificate it signed (cert.pem, key.pem) for localhost and
        127.0.0.1: GnuTLS (ProFTPD's libldap) does not take a self-signed CA certificate as a server's."""
        d = self.dir

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"), "-days", "2",
                "-subj", "/CN=proftpy test CA")
        openssl("req", *ec, "-keyout", str(d / "key.pem"), "-out", str(d / "req.pem"), "-subj", "/CN=localhost")
        names = {"localhost"}               # and every name of 127.0.0.1: libldap checks the one it resolves back to
        try:
            with open("/etc/hosts") as f:
                for line in f:
                    words = line.split("#")[0].split()
                    if words[:1] == ["127.0.0.1"]:
                        names.update(words[1:])
        except OSError:
            pass                            # no hosts file: localhost it is
        san = ",".join(f"DNS:{n}" for n in sorted(names)) + ",IP:127.0.0.1"
        (d / "ext.cnf").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", str(d / "req.pem"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca-key.pem"),
                "-CAcreateserial", "-out", str(d / "cert.pem"), "-days", "2", "-extfile", str(d / "ext.cnf"))
        # SASL EXTERNAL's client certificates: one from the CA, one self-signed
        openssl("req", *ec, "-keyout", str(d / "client-key.pem"), "-out", str(d / "client-req.pem"),
                "-subj", f"/CN={CLIENT_NAME}")
        (d / "client.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                                      "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", str(d / "client-req.pem"), "-CA", str(d / "ca.pem"), "-CAkey",
                str(d / "ca-key.pem"), "-CAcreateserial", "-out", str(d / "client.pem"), "-days", "2", "-extfile",
                str(d / "client.cnf"))
        openssl("req", "-x509", *ec, "-keyout", str(d / "stranger-key.pem"), "-out", str(d / "stranger.pem"),
                "-days", "2", "-subj", f"/CN={CLIENT_NAME}")

    def start(self, users: list[User], groups: list[PosixGroup], more: str = "") -> "Slapd":
        """`more`: LDIF entries added after the users and groups."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "db").mkdir(exist_ok=True)
        self._certificates()
        conf = self.dir / "slapd.conf"
        conf.write_text(CONFIG.format(dir=self.dir, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PW))
        (self.dir / "proftpy-test.schema").write_text(SCHEMA)
        (self.dir / "data.ldif").write_text(ldif(users, groups) + ("\n" + more if more else ""))
        subprocess.run([SLAPADD, "-q", "-f", str(conf), "-l", str(self.dir / "data.ldif")], check=True,
                       capture_output=True, timeout=60)
        for _ in range(5):                      # a port taken between the probe and slapd's bind: try others
            self.port, self.tls_port = free_port(), free_port()
            if self._launch():
                return self
        raise RuntimeError("slapd did not start: " + (self.dir / "slapd.log").read_text(errors="replace"))

    def _launch(self) -> bool:
        log = open(self.dir / "slapd.log", "ab")
        self.proc = subprocess.Popen([SLAPD, "-d", "0", "-f", str(self.dir / "slapd.conf"), "-h",
                                      f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.wait_ready(15)

    def restart(self) -> None:
        """Stopped and started again on the same ports: every connection to it is gone."""
        self.stop()
        if not self._launch():
            raise RuntimeError("slapd did not start again: " + (self.dir / "slapd.log").read_text(errors="replace"))
