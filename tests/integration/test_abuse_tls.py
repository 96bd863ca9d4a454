"""The abuse suite's attacks again, over an FTPS session: the same test functions of test_abuse.py, run with a
control connection that did AUTH TLS, PBSZ 0 and PROT P, and data connections that resume its TLS session (the
handshake happens on their first read or write, so an attack may connect before it sends its command, as over
plain FTP).

A subset, to keep the run short: the attacks on the control connection (long lines, pipelining, NUL, Telnet, bytes
that are not UTF-8...), on data connections (PASV storms, port stealing, closes at every moment) and on paths, on
one shared daemon that requires TLS (`TLSRequired on`). Left out: the attacks that need a daemon of their own
(`fresh`: timeouts, resets of uploads with other store settings) or the userland jail (`jd`), whose path handling
does not depend on the transport; a data connection closed before the command (over FTPS the handshake then fails:
`425`, as in ProFTPD, where plain FTP answers 226 or 426); the half-closed control connection (Python's
SSLSocket.shutdown drops the client's TLS layer, so the client could no longer read the replies). Ten thousand
pipelined NOOPs run here in batches from one thread (`test_pipelined_noops_over_ftps`): the plain attack writes
from a second thread while the first reads, which one SSLSocket (one OpenSSL SSL object) cannot do safely."""

from __future__ import annotations

import inspect
import socket
import ssl

import pytest

import test_abuse as abuse
from conftest import AUTH_CONFIG, BASE_CONFIG, Daemon, fill, start_daemon
from tls_helpers import module_daemon, pki  # noqa: F401 - pki is a fixture

ATTACKS = [
    ("test_64k_line_without_crlf_is_refused_and_the_session_goes_on", {}),
    ("test_line_of_exactly_the_limit_and_one_more", {"split": True}),
    ("test_line_of_exactly_the_limit_and_one_more", {"split": False}),
    ("test_bare_lf_ends_a_line_and_bare_cr_stays_inside_it", {}),
    ("test_nul_in_a_command_and_in_a_path", {}),
    ("test_names_that_are_not_utf8_round_trip", {}),
    ("test_non_utf8_user_name_and_password", {}),
    ("test_telnet_sequences_are_handled_as_proftpd", {}),
    ("test_verbs_in_any_case_and_blank_lines", {}),
    ("test_commands_before_login", {}),
    ("test_huge_user_and_argument_fields", {}),
    ("test_epsv_variants_and_epsv_all", {}),
    ("test_500_pasv_in_a_row_keep_the_fd_count_bounded", {}),
    ("test_port_stealing_from_another_address_is_refused", {}),
    ("test_retr_then_close_the_data_socket_mid_transfer", {}),
    ("test_upload_through_a_closed_control_connection", {}),
    ("test_rest_beyond_the_end_of_the_file", {}),
    ("test_paths_cannot_leave_the_root", {}),
    ("test_listings_cannot_see_outside_the_root", {}),
    ("test_store_onto_a_directory", {}),
    ("test_glob_bombs", {}),
    ("test_abrupt_closes_at_every_stage", {}),
    ("test_early_data_connections_leave_no_descriptors", {}),
]


class RawTls(abuse.Raw):
    """test_abuse's Raw over FTPS; the last one made is the one whose session data connections resume."""

    context: ssl.SSLContext
    last: "RawTls | None" = None

    def __init__(self, d: Daemon, timeout: float = 10, greet: bool = True):
        super().__init__(d, timeout, greet=True)
        assert self.cmd("AUTH TLS") == b"234 AUTH TLS successful"
        self.file.close()
        self.sock = self.context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")
        assert self.cmd("PBSZ 0") == b"200 PBSZ 0 successful"
        assert self.cmd("PROT P") == b"200 Protection set to Private"
        RawTls.last = self


def tls_data_connect(addr: tuple[str, int]) -> ssl.SSLSocket:
    sock = socket.create_connection(addr, timeout=10)
    return RawTls.context.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False,
                                      session=RawTls.last.sock.session)


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory, pki):
    d = module_daemon(tmp_path_factory, "abuse-tls")
    base = d.dir
    d.outside = abuse.make_outside(base, *d.users["alice"][:2])
    tls = (f"TLSEngine on\nTLSECCertificateFile {pki.path('server.pem')}\n"
           f"TLSECCertificateKeyFile {pki.path('server.key')}\nTLSRequired on\nTLSLog {base}/tls.log\n")
    d.conf.write_text(fill(tls + abuse.SHARED_CONFIG + BASE_CONFIG + AUTH_CONFIG,
                           dict(port=d.port, dir=base, host="127.0.0.1", ipv6="off", home=base / "home")))
    RawTls.context = pki.client()
    start_daemon(d)
    yield d
    d.stop()


@pytest.mark.parametrize("name,params", ATTACKS,
                         ids=[n[5:] + "".join(f"[{k}={v}]" for k, v in p.items()) for n, p in ATTACKS])
def test_attack_over_ftps(tls_srv, monkeypatch, name, params):
    monkeypatch.setattr(abuse, "Raw", RawTls)
    monkeypatch.setattr(abuse, "data_connect", tls_data_connect)
    start, before = len(tls_srv.log()), abuse.snapshot(tls_srv.outside)
    fn = getattr(abuse, name)
    wanted = inspect.signature(fn).parameters
    args = dict(params)
    if "d" in wanted:
        args["d"] = tls_srv
    if "home" in wanted:
        real = tls_srv.home("alice") / (name[5:45] + "".join(f"-{v}" for v in params.values()))
        real.mkdir()
        abuse.own(tls_srv, real)
        args["home"] = (real, "/" + real.name)
    fn(**args)
    _healthy(tls_srv, start, before)


def _healthy(d: Daemon, log_from: int, outside_before: dict) -> None:
    """test_abuse's check, with the next login over FTPS (the server requires it)."""
    new_log = d.log()[log_from:]
    assert "Traceback" not in new_log and "internal error" not in new_log, new_log[-3000:]
    with RawTls(d) as raw:
        raw.login("bob")
        abuse.alive(raw)
    assert abuse.snapshot(d.outside) == outside_before


def test_pipelined_noops_over_ftps(tls_srv):
    """10,000 NOOPs sent 500 at a time in one record train each, the replies read after each batch."""
    start, before = len(tls_srv.log()), abuse.snapshot(tls_srv.outside)
    with RawTls(tls_srv, timeout=30) as raw:
        replies = []
        for _ in range(20):
            raw.send(b"NOOP\r\n" * 500)
            replies += [raw.line() for _ in range(500)]
        assert len(replies) == 10_000 and set(replies) == {b"200 NOOP command successful\r\n"}
        abuse.alive(raw)
    _healthy(tls_srv, start, before)
