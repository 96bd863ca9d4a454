"""LDAPUseSASL's client mechanisms against their RFCs' worked examples (RFC 2195, RFC 2831, RFC 5802, RFC 7677),
the choice among configured mechanisms, the authentication id taken from LDAPBindDN, and the directive's
checks."""

import pytest

from proftpy.auth.ldap_config import ServerInfo, Settings
from proftpy.auth.ldap_sasl import client, first_rdn, identity
from proftpy.auth.sasl import Identity, SaslError, choose
from proftpy.auth.sasl_digest import DigestMd5, parse_directives, response_value
from proftpy.modules.ldap import _sasl


def test_plain_login_cram_external():
    who = Identity("tim", "tanstaaftanstaaf", authzid="boss")
    assert client("EXTERNAL", who).start() == b"boss"
    assert client("EXTERNAL", Identity("", "")).start() == b""
    assert client("PLAIN", who).start() == b"boss\0tim\0tanstaaftanstaaf"
    login = client("LOGIN", who)
    assert login.start() is None
    assert [login.step(b"Username:"), login.step(b"Password:")] == [b"tim", b"tanstaaftanstaaf"]
    with pytest.raises(SaslError):
        login.step(b"again:")
    # RFC 2195's example
    cram = client("CRAM-MD5", who)
    assert cram.start() is None
    assert (cram.step(b"<1896.697170952@postoffice.reston.mci.net>")
            == b"tim b913a602c7eda7a495b4e6e7334d3890")


def scram_exchange(name, user, password, nonce, server_first, client_final, server_final):
    mech = client(name, Identity(user, password), nonce.encode())
    assert mech.start() == f"n,,n={user},r={nonce}".encode()
    assert mech.step(server_first.encode()) == client_final.encode()
    mech.finish(server_final.encode())
    return mech


def test_scram_sha1_rfc5802():
    scram_exchange("SCRAM-SHA-1", "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL",
                   "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                   "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                   "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")


def test_scram_sha256_rfc7677():
    scram_exchange("SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO",
                   "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                   "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                   "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


@pytest.mark.parametrize("server_first", [
    "r=other-nonce,s=QSXCR+Q6sek8bf92,i=4096",                     # not our nonce extended
    "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",          # our nonce, not extended
    "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=0",
    "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=99999999",     # a CPU burner
    "r=fyko+d2lbbFgONRv9qkxdawLx,s=not base64!,i=4096",
    "e=unknown-user", "garbage"])
def test_scram_refuses_bad_server_first(server_first):
    mech = client("SCRAM-SHA-1", Identity("user", "pencil"), b"fyko+d2lbbFgONRv9qkxdawL")
    mech.start()
    with pytest.raises(SaslError):
        mech.step(server_first.encode())


def test_scram_checks_the_server_signature():
    mech = client("SCRAM-SHA-1", Identity("user", "pencil"), b"fyko+d2lbbFgONRv9qkxdawL")
    mech.start()
    with pytest.raises(SaslError):
        mech.finish(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")          # success before the proof
    mech.step(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
    for wrong in (b"v=AAAAqV8S7suAoZWja4dJRkFsKQ=", None, b"e=other-error"):
        with pytest.raises(SaslError):
            mech.finish(wrong)
    # sent as a last challenge, then success without data
    assert mech.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=") == b""
    mech.finish(None)


def test_scram_escapes_names():
    mech = client("SCRAM-SHA-1", Identity("a=b,c", "x", authzid="z,"), b"nonce")
    assert mech.start() == b"n,a=z=2C,n=a=3Db=2Cc,r=nonce"


def test_digest_md5_rfc2831():
    # RFC 2831 4's example (an IMAP digest-uri: the function takes it as is)
    who = Identity("chris", "secret")
    args = ("elwood.innosoft.com", "OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk", "00000001", "imap/elwood.innosoft.com")
    assert response_value(who, *args, "AUTHENTICATE") == "d388dad90d4bbd760a152321f2143af7"
    assert response_value(who, *args, "") == "ea40f60335c427b5527b84dbabcdfffd"


def test_digest_md5_exchange():
    who = Identity("chris", "secret", realm="elwood.innosoft.com", host="elwood.innosoft.com")
    mech = DigestMd5(who, b"OA6MHXh6VqTrRk")
    assert mech.start() is None
    answer = parse_directives(mech.step(b'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",'
                                        b'algorithm=md5-sess,charset=utf-8'))
    assert answer["username"] == "chris" and answer["qop"] == "auth" and answer["nc"] == "00000001"
    assert answer["digest-uri"] == "ldap/elwood.innosoft.com" and answer["charset"] == "utf-8"
    expected = response_value(who, who.realm, "OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk", "00000001",
                              "ldap/elwood.innosoft.com", "")
    with pytest.raises(SaslError):
        mech.finish(b"rspauth=00000000000000000000000000000000")
    assert mech.step(f"rspauth={expected}".encode()) == b""
    mech.finish(None)


@pytest.mark.parametrize("challenge", [
    b'realm="x",qop="auth",algorithm=md5-sess',                      # no nonce
    b'nonce="n",qop="auth-conf",algorithm=md5-sess',                 # no qop=auth
    b'nonce="n",qop="auth",algorithm=md5',                           # not md5-sess
    b'nonce="n,qop="auth",algorithm=md5-sess',                        # unterminated
    b'nonce="' + b"x" * 3000 + b'"'])
def test_digest_md5_refuses_bad_challenges(challenge):
    with pytest.raises(SaslError):
        DigestMd5(Identity("u", "p")).step(challenge)


def test_parse_directives_quotes():
    assert parse_directives(b' a="x\\"y" , B=tok,,c="" ') == {"a": 'x"y', "b": "tok", "c": ""}


def test_choose_follows_libsasl2():
    assert choose(("PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "DIGEST-MD5"), False) == "SCRAM-SHA-1"
    assert choose(("SCRAM-SHA-1", "SCRAM-SHA-256"), False) == "SCRAM-SHA-256"
    assert choose(("CRAM-MD5", "DIGEST-MD5"), False) == "DIGEST-MD5"
    assert choose(("PLAIN", "CRAM-MD5"), True) == "CRAM-MD5"
    assert choose(("LOGIN", "PLAIN"), True) == "PLAIN"
    assert choose(("PLAIN", "LOGIN"), False) is None             # noplain without TLS
    assert choose(("ANONYMOUS",), True) is None                   # noanonymous
    assert choose(("ANONYMOUS", "PLAIN"), True) == "PLAIN"
    # EXTERNAL: only over TLS with a client certificate, and then first
    assert choose(("SCRAM-SHA-512", "EXTERNAL"), True, certificate=True) == "EXTERNAL"
    assert choose(("SCRAM-SHA-1", "EXTERNAL"), True) == "SCRAM-SHA-1"
    assert choose(("EXTERNAL",), False, certificate=True) is None


def test_authcid_from_bind_dn():
    assert first_rdn("cn=ftp\\,bind,dc=example") == ("cn", "ftp\\,bind")
    assert first_rdn("") is None
    info = ServerInfo("h", "ldap", "ldap.example", 389, None)
    library = {"SASL_AUTHCID": "fallback", "SASL_REALM": "R", "SASL_AUTHZID": "dn:cn=z"}
    who = identity(Settings(bind_dn="CN = admin,dc=example,dc=com", bind_password="pw", library=library), info)
    assert who == Identity("admin", "pw", "dn:cn=z", "R", "ldap.example")
    # only the first RDN is looked at (ProFTPD stops there): no cn in it, the ldap.conf value (or nothing)
    assert identity(Settings(bind_dn="uid=x,cn=y", library=library), info).authcid == "fallback"
    assert identity(Settings(bind_dn="uid=x,cn=y"), info).authcid == ""


def test_directive_words():
    assert _sasl(["scram-sha-256", "PLAIN", "plain", "anonymous"]) == ("SCRAM-SHA-256", "PLAIN", "ANONYMOUS")
    assert _sasl(["external"]) == ("EXTERNAL",)                  # beyond ProFTPD 1.3.8
    for bad, text in ((["KERBEROS_V4"], "unsupported SASL mechanism: KERBEROS_V4"),
                      (["GSSAPI", "PLAIN"], "unsupported SASL mechanism: GSSAPI"),
                      (["SCRAM-SHA-3"], "SCRAM mechanisms are"), ([], "wrong number of parameters")):
        with pytest.raises(ValueError, match=text):
            _sasl(bad)


class StubConnection:
    """What sasl_bind asks of a Connection: each answer in turn (result code, server credentials)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.sent = []
        self.closed = False

    def sasl_bind(self, dn, mechanism, credentials, version, deadline):
        from proftpy.auth.ldap_proto import Result
        self.sent.append((dn, mechanism, credentials))
        code, data = self.answers.pop(0) if self.answers else (14, b"more")
        return Result(code), data

    def close(self):
        self.closed = True


def sasl_settings(mechs, dn="cn=user,dc=x"):
    return Settings(servers=(ServerInfo("h", "ldap", "h", 389, None),), bind_dn=dn, bind_password="pencil",
                    sasl_mechs=mechs)


def test_sasl_bind_steps_and_failures():
    from proftpy.auth.ldap_proto import LdapError
    from proftpy.auth.ldap_sasl import MAX_STEPS, sasl_bind
    s = sasl_settings(("CRAM-MD5",))
    conn = StubConnection([(14, b"<1.2@h>"), (0, None)])
    assert sasl_bind(conn, s, s.servers[0], 0.0).code == 0
    assert [c for _, _, c in conn.sent][0] is None and conn.sent[1][2].startswith(b"user ")
    assert conn.sent[0][:2] == ("cn=user,dc=x", "CRAM-MD5")
    # the server's refusal is the result, not an error
    assert sasl_bind(StubConnection([(14, b"<1.2@h>"), (49, None)]), s, s.servers[0], 0.0).code == 49
    # a server that never ends, one whose data is wrong, one that skips SCRAM's proof: the bind fails, closed
    for mechs, answers in ((("LOGIN",), []), (("CRAM-MD5",), [(14, b"a"), (14, b"b")]),
                           (("SCRAM-SHA-1",), [(14, b"r=x,s=QSXCR+Q6sek8bf92,i=4096")]),
                           (("SCRAM-SHA-1",), [(0, None)])):
        conn = StubConnection(answers)
        info = ServerInfo("h", "ldaps", "h", 636, None)
        with pytest.raises(LdapError) as e:
            sasl_bind(conn, sasl_settings(mechs), info, 0.0)
        assert e.value.code == -2 and conn.closed and len(conn.sent) <= MAX_STEPS
    # nothing worthy: nothing sent
    conn = StubConnection([])
    with pytest.raises(LdapError) as e:
        sasl_bind(conn, sasl_settings(("PLAIN",)), s.servers[0], 0.0)
    assert e.value.code == -6 and conn.sent == []
