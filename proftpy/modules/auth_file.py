"""mod_auth_file: users and groups from AuthUserFile / AuthGroupFile (passwd(5) and group(5) formats)."""

from __future__ import annotations

from ..auth.file import SYNTAX_CHECK, AuthGroupFile, AuthUserFile, FileBackend, parse_directive_args, parse_options
from ..config.registry import SVG, Directive, Merge
from ..config.types import Custom
from ..module import Module

NAME = "mod_auth_file.c"


def _user_file(args: list[str]) -> dict:
    return parse_directive_args("AuthUserFile", args)


def _group_file(args: list[str]) -> dict:
    return parse_directive_args("AuthGroupFile", args)


directives = (
    Directive("AuthUserFile", Custom(_user_file, "path [id min-max] [home regex] [name regex]"), SVG, None,
              Merge.SERVER, "passwd(5)-format user file; `!regex` negates a filter."),
    Directive("AuthGroupFile", Custom(_group_file, "path [id min-max] [name regex]"), SVG, None, Merge.SERVER,
              "group(5)-format group file."),
    Directive("AuthFileOptions", Custom(parse_options, "InsecurePerms|SyntaxCheck ..."), SVG, frozenset(),
              Merge.SERVER, "InsecurePerms: accept world-readable files; SyntaxCheck: report bad lines."),
)


def backend(server) -> FileBackend | None:
    """The file backend configured for a server, or None when it has neither file."""
    users, groups = server.get("AuthUserFile"), server.get("AuthGroupFile")
    if users is None and groups is None:
        return None
    options = server.get("AuthFileOptions")
    return FileBackend(AuthUserFile(**users, options=options) if users else None,
                       AuthGroupFile(**groups, options=options) if groups else None)


def problems(config) -> list[tuple[str, bool]]:
    """For `proftpy -t`: (message, fatal) for every AuthUserFile/AuthGroupFile problem. Only files with
    `AuthFileOptions SyntaxCheck` make a problem fatal; the rest are warnings (the file or line is skipped)."""
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for server in config.servers:
        files = backend(server)
        for f in (files.user_file, files.group_file) if files else ():
            if f is None or f.path in seen:
                continue
            seen.add(f.path)
            fatal = SYNTAX_CHECK in f.options
            out += [(p, fatal) for p in f.validate()] + [(p, False) for p in f.skipped()]
    return out


MODULE = Module(NAME, directives=directives, auth_backend=backend, check=problems)
