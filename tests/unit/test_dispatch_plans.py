"""The dispatcher's per-command hook plans: declaration order, "*" hooks, and hooks a row leaves out (`only`)."""

from proftpy.dispatch import LOG_CMD, LOG_CMD_ERR, POST_CMD, PRE_CMD, Command, Dispatcher, Hook, Request
from proftpy.reply import Reply


def _row(name, transfer=False):
    return Command(name, lambda s, r: Reply(200, "ok"), None, transfer=transfer)


def _dispatcher(ran):
    def hook(label, result=None):
        def handler(session, req):
            ran.append((label, req.name))
            return result
        return handler

    hooks = [Hook(PRE_CMD, "*", hook("any")),
             Hook(PRE_CMD, "RETR", hook("retr")),
             Hook(PRE_CMD, "*", hook("transfers"), only=lambda row: row.transfer),
             Hook(PRE_CMD, "*", hook("early"), early=True),
             Hook(POST_CMD, "*", hook("post")),
             Hook(LOG_CMD, "*", hook("log-not-noop"), only=lambda row: row.name != "NOOP"),
             Hook(LOG_CMD_ERR, "*", hook("log-err")),
             Hook(LOG_CMD_ERR, "*", hook("log-err-rows"), only=lambda row: True)]
    return Dispatcher([_row("NOOP"), _row("RETR", transfer=True), _row("PASV")], hooks)


class FakeSession:
    authenticated = True


def test_hooks_run_in_declaration_order_and_only_for_their_rows():
    ran = []
    d = _dispatcher(ran)
    d.dispatch(FakeSession(), Request("RETR", "f"))
    assert ran == [("early", "RETR"), ("any", "RETR"), ("retr", "RETR"), ("transfers", "RETR"),
                   ("post", "RETR"), ("log-not-noop", "RETR")]
    ran.clear()
    d.dispatch(FakeSession(), Request("PASV", ""))
    assert ran == [("early", "PASV"), ("any", "PASV"), ("post", "PASV"), ("log-not-noop", "PASV")]
    ran.clear()
    d.dispatch(FakeSession(), Request("NOOP", ""))
    assert ran == [("early", "NOOP"), ("any", "NOOP"), ("post", "NOOP")]


def test_unknown_command_runs_the_star_hooks_without_a_row_condition():
    ran = []
    d = _dispatcher(ran)

    class Events:
        def emit(self, *a, **k):
            pass

    session = FakeSession()
    session.events = Events()
    reply = d.dispatch(session, Request("XYZZY", ""))
    assert reply.code == 500
    assert ran == [("log-err", "XYZZY")]        # no row: a hook with a row condition is left out


def test_a_made_up_command_runs_the_hooks_around_its_action_and_sends_nothing():
    ran = []
    d = _dispatcher(ran)
    acted = []
    reply = d.made_up(FakeSession(), Request("RETR", "f"), lambda: acted.append(1) or Reply(226, "done"))
    assert reply.code == 226 and acted == [1]
    assert ran == [("early", "RETR"), ("any", "RETR"), ("retr", "RETR"), ("transfers", "RETR"),
                   ("post", "RETR"), ("log-not-noop", "RETR")]
    ran.clear()
    reply = d.made_up(FakeSession(), Request("RETR", "f"), lambda: Reply(550, "f: No such file or directory"))
    assert reply.code == 550
    assert ran[-2:] == [("log-err", "RETR"), ("log-err-rows", "RETR")]


def test_a_pre_cmd_refusal_keeps_a_made_up_command_from_running():
    ran, acted = [], []
    refusing = Hook(PRE_CMD, "MKD", lambda s, r: Reply(552, "MKD denied: quota exceeded"))
    logged = Hook(LOG_CMD_ERR, "*", lambda s, r: ran.append(r.reply.code))
    d = Dispatcher([_row("MKD")], [refusing, logged])
    reply = d.made_up(FakeSession(), Request("MKD", "/d"), lambda: acted.append(1) or Reply(257, "made"))
    assert reply.code == 552 and acted == [] and ran == [552]


def test_a_failing_post_cmd_hook_does_not_skip_the_hooks_after_it():
    """One module's fault must not skip another's check (mod_tls's after PASS follows mod_delay's)."""
    ran = []

    def broken(session, req):
        raise ValueError("a module's bug")

    def check(label):
        def handler(session, req):
            ran.append((label, req.name))
        return handler

    d = Dispatcher([_row("PASS")], [Hook(POST_CMD, "PASS", broken), Hook(POST_CMD, "PASS", check("checked")),
                                   Hook(LOG_CMD, "PASS", broken), Hook(LOG_CMD, "PASS", check("logged"))])
    assert d.dispatch(FakeSession(), Request("PASS", "x")).code == 200
    assert ran == [("checked", "PASS"), ("logged", "PASS")]
