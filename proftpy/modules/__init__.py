"""The built-in modules, in ProFTPD's load order. Each is a Python file ending in `MODULE = Module(...)` (see
proftpy/module.py); several files may make up one ProFTPD module (mod_core.c is core, shutdown, access,
scoreboard and files)."""

from __future__ import annotations

import functools

from ..module import ModuleSet
from . import (access, auth, auth_file, auth_otp, auth_pam, auth_unix, ban, ban_ctrls, ban_master, cap, copy, core,
               ctrls, ctrls_admin, deflate, delay, digest, dnsbl, dso, dynmasq, facl, facts, files, ident, ifsession,
               ifversion, lang, ldap, load, log, log_forensic, ls, maxclients, memcache, passive_pool, prefork,
               prometheus, proxy_protocol, qos, quotatab, quotatab_file, quotatab_ldap, quotatab_radius, quotatab_sql,
               radius, ratio, readme, redis, redis_log, rewrite, rlimit, scoreboard, sftp, sftp_pam, sftp_sql, shaper,
               shutdown, site, site_misc, sql, sql_mysql, sql_passwd, sql_postgres, sql_sqlite, statcache, tls, trace,
               unique_id, wrap, wrap2, wrap2_file, wrap2_redis, wrap2_sql, xfer)
from . import exec as exec_

# mod_log_forensic captures from right after the trace settings (the other modules' session start is in its
# buffer); mod_unique_id's ID is made before the other modules' session start (ExecOnConnect may log it);
# mod_ifsession stands where ProFTPD's "load it last" puts its handlers: its <IfClass> merge right after the client's
# class is known (mod_access), its PASS merge before the other modules' PASS work (Max* counts, DisplayLogin);
# mod_rewrite's PRE_CMD hook changes the argument before any other module's (ProFTPD runs the DSO's first);
# mod_radius comes last: its Reply-Message lines, added by ProFTPD's mod_radius before PASS runs, lead the 230 (and
# the 530) ahead of what the other modules' POST_CMD hooks put there (DisplayLogin, SQLShowInfo, WrapAllowMsg)
# mod_dnsbl asks the DNS blacklists once the session is in the scoreboard, before anything asks the client (identd)
# or runs for it (ExecOnConnect);
# mod_ident asks the client's identd once the checks that may refuse the client at once have passed and the session
# is in the scoreboard, before mod_wrap2's and mod_exec's connect checks (which may use its answer); mod_sftp's
# transport (this connection speaks SSH) comes before mod_tls's, which then leaves the connection alone
MODULES = [m.MODULE for m in (core, cap, dso, prefork, trace, log_forensic, shutdown, unique_id, access, ifsession,
                              rewrite, delay, redis, memcache, ban, ban_master, ban_ctrls, maxclients, load, rlimit,
                              scoreboard, dnsbl, ident, files, xfer, passive_pool, auth_file, auth_unix, auth_pam,
                              auth, sql, sql_sqlite, sql_postgres, sql_mysql, sql_passwd, auth_otp, ldap, ls, log,
                              redis_log, site, copy, site_misc, readme, facts, lang, quotatab, quotatab_file,
                              quotatab_sql, quotatab_ldap, ratio, deflate, digest, dynmasq, facl, ctrls, ctrls_admin,
                              wrap, wrap2, wrap2_file, wrap2_sql, wrap2_redis, exec_, prometheus, sftp, sftp_pam,
                              sftp_sql, tls, proxy_protocol, ifversion, qos, shaper, statcache, radius,
                              quotatab_radius)]


@functools.lru_cache(maxsize=1)
def loaded() -> ModuleSet:
    """The built-in modules as one set: built once (in the master, before any fork)."""
    return ModuleSet(MODULES)


def registry():
    """All directives of all built-in modules (declared once each)."""
    return loaded().registry


def dispatcher():
    """The command table and hooks of all modules."""
    return loaded().dispatcher
