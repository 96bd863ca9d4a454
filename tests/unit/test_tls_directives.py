"""mod_tls's directive forms, as ProFTPD 1.3.8's set_* handlers read them (reference/modules.md §1a-§1c), and the
configuration errors a wrong form gets."""

from __future__ import annotations

import pytest

from proftpy.config.errors import ConfigError
from proftpy.config.parser import parse_text
from proftpy.modules import registry
from proftpy.modules.tls_directives import (CipherSuite, Required, SessionCache, StaplingCache, parse_cipher_suite,
                                            parse_duration, parse_options, parse_protocols, parse_required,
                                            parse_session_cache, parse_user_name, parse_verify_client)

# §1b: argument -> (ctrl, auth, data)
REQUIRED = [("off", 0, 0, 0), ("false", 0, 0, 0), ("on", 1, 1, 1), ("true", 1, 1, 1), ("both", 1, 1, 1),
            ("ctrl+data", 1, 1, 1), ("ctrl", 1, 1, 0), ("control", 1, 1, 0), ("data", 0, 0, 1),
            ("!data", 0, 0, -1), ("ctrl+!data", 1, 1, -1), ("auth", 0, 1, 0), ("auth+data", 0, 1, 1),
            ("auth+!data", 0, 1, -1)]


@pytest.mark.parametrize("word,ctrl,auth,data", REQUIRED)
def test_tls_required_forms(word, ctrl, auth, data):
    assert parse_required([word]) == Required(ctrl, auth, data)


@pytest.mark.parametrize("args", [["sometimes"], ["Ctrl"], ["data+ctrl"], [], ["on", "off"]])
def test_tls_required_refuses_anything_else(args):
    with pytest.raises(ValueError):
        parse_required(args)


def test_tls_required_shows_as_its_word():
    assert [str(parse_required([w])) for w in ("off", "on", "auth+!data", "control")] == \
        ["off", "on", "auth+!data", "ctrl"]


@pytest.mark.parametrize("args,want", [
    (["TLSv1.2", "TLSv1.3"], ("TLSv1.2", "TLSv1.3")),
    (["TLSv1.0"], ("TLSv1",)),
    (["SSLv23"], ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
    (["ALL", "-SSLv3", "-TLSv1", "-TLSv1.1"], ("TLSv1.2", "TLSv1.3")),
    (["all", "-TLSv1.3", "+TLSv1.3", "-TLSv1.2"], ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.3")),
    (["tlsv1.3"], ("TLSv1.3",)),
])
def test_tls_protocol_forms(args, want):
    assert parse_protocols(args) == want


@pytest.mark.parametrize("args,message", [
    (["ALL", "TLSv1"], "missing required +/- prefix: TLSv1"),
    (["TLSv2"], "unknown protocol: 'TLSv2'"),
    ([], "wrong number of parameters"),
])
def test_tls_protocol_errors(args, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_protocols(args)


def test_tls_cipher_suite_forms():
    assert parse_cipher_suite(["HIGH:!aNULL"]) == CipherSuite(None, "HIGH:!aNULL")
    assert parse_cipher_suite(["TLSv1.3", "TLS_AES_128_GCM_SHA256"]) == CipherSuite("TLSv1.3",
                                                                                  "TLS_AES_128_GCM_SHA256")
    with pytest.raises(ValueError, match="requires protocol parameter; use 'TLSCipherSuite TLSv1.3 TLS_AES"):
        parse_cipher_suite(["TLS_AES_128_GCM_SHA256"])
    with pytest.raises(ValueError, match="unknown/unsupported protocol specifier: SSLv3"):
        parse_cipher_suite(["SSLv3", "HIGH"])


def test_tls_options_are_proftpds_words():
    assert parse_options(["AllowClientRenegotiation", "UseImplicitSSL"]) == \
        frozenset({"AllowClientRenegotiations", "UseImplicitSSL"})
    with pytest.raises(ValueError, match="unknown TLSOption 'useimplicitssl'"):
        parse_options(["useimplicitssl"])            # case matters, as in ProFTPD


def test_tls_session_cache_forms():
    assert parse_session_cache(["off"]) == SessionCache("off")
    assert parse_session_cache(["internal:"]) == SessionCache("internal")
    assert parse_session_cache(["internal:", "1800"]) == SessionCache("internal", 1800)
    shm = parse_session_cache(["shm:/file=/var/run/proftpd/sesscache"])
    assert (shm.kind, shm.path, shm.size, shm.lifetime, shm.external) == \
        ("shm", "/var/run/proftpd/sesscache", 1538 * 1024, None, True)
    assert parse_session_cache(["shm:/file=/run/c&size=100000", "600"]) == SessionCache("shm", 600, "/run/c", 100000)
    assert parse_session_cache(["redis:"]) == SessionCache("redis")
    assert parse_session_cache(["memcache:/json", "90"]) == SessionCache("memcache", 90, json=True)
    assert not parse_session_cache(["internal:"]).external
    for args, why in ((["shm:"], "needs /file=PATH"), (["shm:/path=/x"], "needs /file=PATH"),
                      (["shm:/file=/x&size=1000"], "smaller than minimum size"),
                      (["shm:/file=/x&size=1M"], "badly formatted size"), (["shm:/file=/x&sz=1"], "badly formatted"),
                      (["shm:/file=x"], "not an absolute path"), (["memcache:/tpl"], "unknown memcache: info"),
                      (["redis:/x"], "unknown redis: info"), (["fscache:/var/cache"], "not available"),
                      (["shm:/file=/x", "soon"], "not a valid timeout"), (["internal"], "badly formatted parameter"),
                      (["off", "10"], "takes no timeout")):
        with pytest.raises(ValueError, match=why):
            parse_session_cache(args)


def test_other_forms():
    assert parse_verify_client(["optional"]) == "optional" and parse_verify_client(["yes"]) == "on"
    assert parse_user_name(["1.2.3.4.5"]) == "1.2.3.4.5"
    with pytest.raises(ValueError, match="badly formatted OID parameter"):
        parse_user_name(["commonname"])
    assert [parse_duration([w]) for w in ("300", "5m", "1h", "00:01:30")] == [300, 300, 3600, 90]


def test_a_wrong_form_is_file_line_message(tmp_path):
    text = "ServerName x\nTLSEngine on\nTLSRequired sometimes\n"
    with pytest.raises(ConfigError) as e:
        parse_text(text, registry(), str(tmp_path / "p.conf"))
    assert str(e.value).startswith(f"{tmp_path / 'p.conf'}:3: TLSRequired") and "bad parameter" in str(e.value)


def test_tls_required_may_stand_in_a_directory_and_ftpaccess():
    contexts = registry().get("TLSRequired").context_letters()
    assert contexts == "S V G A D F"


def test_stapling_cache_types_are_proftpds():
    """ProFTPD's mod_tls_fscache is the `fs:` OCSP stapling cache (not a session cache); an unknown type is
    ProFTPD's fatal error; shm: takes ProFTPD's /file=PATH[&size=BYTES], a size too small is an error."""
    parse = registry().get("TLSStaplingCache").parse
    assert parse(["fs:/path=/var/ftpd/ocsp/"]) == StaplingCache("fs", "/var/ftpd/ocsp")
    assert parse(["redis:"]) == StaplingCache("redis", "")
    assert parse(["memcache:"]) == StaplingCache("memcache", "")
    assert parse(["shm:/file=/run/ocsp"]) == StaplingCache("shm", "/run/ocsp", 1538 * 1024)
    assert parse(["shm:/file=/run/ocsp&size=4224"]) == StaplingCache("shm", "/run/ocsp", 4224)
    for args, why in ((["fscache:/var/ftpd"], "OCSP stapling cache type 'fscache' not available"),
                      (["/var/ftpd"], "badly formatted parameter"),
                      (["shm:/file=/x&size=4223"], r"requested size \(4223 bytes\) smaller than minimum size "
                                                    r"\(4224 bytes\)"),
                      (["shm:/x"], "shm: needs /file=PATH"),
                      (["shm:/file=x"], "not an absolute path"),
                      (["redis:x"], "unknown redis: info 'x'"),
                      (["memcache:/json"], "unknown memcache: info '/json'"),
                      (["fs:/var/ftpd"], "fs: needs /path=DIR"),
                      (["fs:/path=ocsp"], "not an absolute path")):
        with pytest.raises(ValueError, match=why):
            parse(args)
