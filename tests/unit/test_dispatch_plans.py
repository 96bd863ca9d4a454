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
