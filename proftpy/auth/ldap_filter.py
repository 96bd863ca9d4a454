"""LDAP search filters: the string form of RFC 4515 parsed into the BER of RFC 4511 section 4.5.1, and the escaping
that keeps a user's name a value.

`parse(text)` accepts what OpenLDAP's library accepts of mod_ldap's filter templates: `(&(uid=carol)(objectclass=
posixAccount))`, a bare item without its parentheses (`uid=carol`), white space between the filters of a list,
RFC 4515's `\\2a` escapes and the LDAPv2 ones OpenLDAP still reads (`\\*`, `\\(`, `\\)`, `\\\\`). Anything else raises
FilterError: an unbalanced parenthesis, an empty list, a bad escape, an attribute description that is not one.

`interpolate(template, value)` is mod_ldap's pr_ldap_interpolate_filter: `%u` and `%v` become the value with `\\`,
`*`, `(` and `)` escaped (ProFTPD's LDAPv2-style escapes, so the LDAPLog shows the filter ProFTPD's shows; a NUL,
which no FTP name holds, as `\\00`), in one pass, so nothing in the value is read as filter syntax or replaced again.
`interpolate_dn` does the same for a base DN with RFC 4514's escaping (ProFTPD uses the filter escaping there too,
which leaves `,` `+` `=` open: a name could then move the search elsewhere).
"""

from __future__ import annotations

import re

from proftpy import ber

# Filter CHOICE tags
AND, OR, NOT = 0xA0, 0xA1, 0xA2
EQUALITY, SUBSTRINGS, GREATER_OR_EQUAL, LESS_OR_EQUAL, PRESENT, APPROX, EXTENSIBLE = (
    0xA3, 0xA4, 0xA5, 0xA6, 0x87, 0xA8, 0xA9)
SUB_INITIAL, SUB_ANY, SUB_FINAL = 0x80, 0x81, 0x82
MR_RULE, MR_TYPE, MR_VALUE, MR_DN = 0x81, 0x82, 0x83, 0x84

MAX_DEPTH = 64              # nesting a filter may have (a template written by an administrator needs a few)

ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*\Z")
OID = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\Z")


class FilterError(ValueError):
    """Text that is not a search filter."""


# -- escaping ------------------------------------------------------------------------------------------------------
FILTER_ESCAPES = {"\\": "\\\\", "*": "\\*", "(": "\\(", ")": "\\)", "\0": "\\00"}
_VARIABLE = re.compile(r"%[uv]")


def escape(value: str) -> str:
    """A value with the characters filters give a meaning to escaped (ProFTPD's escaping of a user's name)."""
    return "".join(FILTER_ESCAPES.get(c, c) for c in value)


def interpolate(template: str, value: str) -> str:
    """mod_ldap's filter templates: each `%u` and `%v` replaced by the escaped value, in one pass."""
    escaped = escape(value)
    return _VARIABLE.sub(lambda _: escaped, template)


def escape_dn_value(value: str) -> str:
    """An attribute value inside a DN (RFC 4514 section 2.4)."""
    out = []
    for i, c in enumerate(value):
        if c in ',+"\\<>;=' or (c == "#" and i == 0) or (c == " " and i in (0, len(value) - 1)):
            out.append("\\" + c)
        elif c == "\0":
            out.append("\\00")
        else:
            out.append(c)
    return "".join(out)


def interpolate_dn(template: str, value: str) -> str:
    """A base DN with `%u`/`%v` replaced by the value escaped for a DN."""
    escaped = escape_dn_value(value)
    return _VARIABLE.sub(lambda _: escaped, template)


# -- parsing -------------------------------------------------------------------------------------------------------
def parse(text: str) -> bytes:
    """The BER encoding of a filter's string form; FilterError when it is not one."""
    s = text.strip()
    if not s:
        raise FilterError("empty filter")
    if not s.startswith("("):
        s = "(" + s + ")"           # OpenLDAP reads `uid=carol` as `(uid=carol)`
    parser = _Parser(s)
    encoded = parser.filter(0)
    parser.skip_space()
    if parser.pos != len(s):
        raise FilterError(f"unexpected '{s[parser.pos:]}' after the filter")
    return encoded


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.s) and self.s[self.pos] == " ":
            self.pos += 1

    def filter(self, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise FilterError("filter nested too deeply")
        self.skip_space()
        if self.pos >= len(self.s) or self.s[self.pos] != "(":
            raise FilterError(f"expected '(' at offset {self.pos}")
        self.pos += 1
        self.skip_space()
        if self.pos >= len(self.s):
            raise FilterError("unbalanced parentheses")
        c = self.s[self.pos]
        if c in "&|":
            self.pos += 1
            parts = []
            while True:
                self.skip_space()
                if self.pos < len(self.s) and self.s[self.pos] == ")":
                    break
                parts.append(self.filter(depth + 1))
            if not parts:
                raise FilterError(f"empty '{c}' list")
            encoded = ber.set_of(*parts, tag=AND if c == "&" else OR)
        elif c == "!":
            self.pos += 1
            encoded = ber.tlv(NOT, self.filter(depth + 1))
            self.skip_space()
        else:
            end = self._item_end()
            encoded = item(self.s[self.pos:end])
            self.pos = end
        if self.pos >= len(self.s) or self.s[self.pos] != ")":
            raise FilterError("unbalanced parentheses")
        self.pos += 1
        return encoded

    def _item_end(self) -> int:
        """Where the item at `pos` ends: the first `)` that is not escaped (an escaped one is a value's)."""
        i = self.pos
        while i < len(self.s):
            c = self.s[i]
            if c == "\\":
                i += 2
                continue
            if c == ")":
                return i
            if c == "(":
                raise FilterError(f"unescaped '(' in '{self.s[self.pos:]}'")
            i += 1
        raise FilterError("unbalanced parentheses")


def unescape(value: str) -> bytes:
    """An assertion value's bytes: `\\XX` (two hex digits) and OpenLDAP's LDAPv2 `\\*`, `\\(`, `\\)`, `\\\\`; an
    unescaped `*` is the caller's business (substrings), a lone `\\` an error."""
    raw = value.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b != 0x5C:
            out.append(b)
            i += 1
            continue
        pair = raw[i + 1:i + 3]
        if len(pair) == 2 and all(chr(x) in "0123456789abcdefABCDEF" for x in pair):
            out.append(int(pair, 16))
            i += 3
        elif raw[i + 1:i + 2] in (b"*", b"(", b")", b"\\"):
            out += raw[i + 1:i + 2]
            i += 2
        else:
            raise FilterError(f"bad escape in '{value}'")
    return bytes(out)


def _split_stars(value: str) -> list[str]:
    """The value cut at its unescaped `*`s."""
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "*":
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _attribute(name: str) -> bytes:
    if not ATTRIBUTE.match(name):
        raise FilterError(f"'{name}' is not an attribute description")
    return name.encode("ascii")


def item(text: str) -> bytes:
    """One item: `attr=value`, `attr~=`, `attr>=`, `attr<=`, presence `attr=*`, substrings `attr=a*b*c`, and
    extensible matches `attr:dn:rule:=value`."""
    eq = text.find("=")
    if eq <= 0:
        raise FilterError(f"'{text}' is not a filter item")
    left, value = text[:eq], text[eq + 1:]
    if left.endswith(":"):
        return _extensible(left[:-1], value)
    op = left[-1] if left[-1] in "~<>" else ""
    attr = _attribute(left[:-1] if op else left)
    if op:
        if _split_stars(value) != [value]:
            raise FilterError(f"unescaped '*' in '{text}'")
        tag = {"~": APPROX, ">": GREATER_OR_EQUAL, "<": LESS_OR_EQUAL}[op]
        return ber.sequence(ber.octets(attr), ber.octets(unescape(value)), tag=tag)
    if value == "*":
        return ber.tlv(PRESENT, attr)
    pieces = _split_stars(value)
    if len(pieces) == 1:
        return ber.sequence(ber.octets(attr), ber.octets(unescape(value)), tag=EQUALITY)
    subs = []
    if pieces[0]:
        subs.append(ber.octets(unescape(pieces[0]), SUB_INITIAL))
    for middle in pieces[1:-1]:
        if not middle:
            raise FilterError(f"'**' in '{text}'")
        subs.append(ber.octets(unescape(middle), SUB_ANY))
    if pieces[-1]:
        subs.append(ber.octets(unescape(pieces[-1]), SUB_FINAL))
    return ber.sequence(ber.octets(attr), ber.sequence(*subs), tag=SUBSTRINGS)


def _extensible(left: str, value: str) -> bytes:
    """`attr[:dn][:rule]:=value` or `[:dn]:rule:=value` (the final `:` already cut off)."""
    words = left.split(":")
    attr = words.pop(0)
    dn = False
    if words and words[0].lower() == "dn":
        dn = True
        words.pop(0)
    if len(words) > 1 or (words and not OID.match(words[0])):
        raise FilterError(f"bad matching rule in '{left}:={value}'")
    rule = words[0] if words else None
    if not attr and rule is None:
        raise FilterError(f"an extensible match needs an attribute or a matching rule: '{left}:={value}'")
    if _split_stars(value) != [value]:
        raise FilterError(f"unescaped '*' in '{left}:={value}'")
    parts = []
    if rule is not None:
        parts.append(ber.octets(rule, MR_RULE))
    if attr:
        parts.append(ber.octets(_attribute(attr), MR_TYPE))
    parts.append(ber.octets(unescape(value), MR_VALUE))
    if dn:
        parts.append(ber.boolean(True, MR_DN))
    return ber.sequence(*parts, tag=EXTENSIBLE)


# -- reading back (tests, logs) ------------------------------------------------------------------------------------
def to_string(encoded: bytes) -> str:
    """The RFC 4515 string of a filter's BER (values escaped as `\\XX` where needed): what the server sees."""
    tag, content, end = ber.element(encoded)
    if end != len(encoded):
        raise FilterError("bytes after the filter")
    return _string(tag, content)


def _value(raw: bytes) -> str:
    out = []
    for b in raw:
        if b in b"*()\\\0" or b >= 0x80:
            out.append(f"\\{b:02x}")
        else:
            out.append(chr(b))
    return "".join(out)


def _string(tag: int, content: bytes) -> str:
    if tag in (AND, OR):
        return "(" + ("&" if tag == AND else "|") + "".join(_string(t, c) for t, c in ber.elements(content)) + ")"
    if tag == NOT:
        t, c, _ = ber.element(content)
        return "(!" + _string(t, c) + ")"
    if tag == PRESENT:
        return f"({content.decode('ascii')}=*)"
    if tag in (EQUALITY, APPROX, GREATER_OR_EQUAL, LESS_OR_EQUAL):
        (_, attr), (_, value) = ber.elements(content)
        op = {EQUALITY: "=", APPROX: "~=", GREATER_OR_EQUAL: ">=", LESS_OR_EQUAL: "<="}[tag]
        return f"({attr.decode('ascii')}{op}{_value(value)})"
    if tag == SUBSTRINGS:
        (_, attr), (_, subs) = ber.elements(content)
        items = ber.elements(subs)
        initial = next((_value(c) for t, c in items if t == SUB_INITIAL), "")
        final = next((_value(c) for t, c in items if t == SUB_FINAL), "")
        middle = [_value(c) for t, c in items if t == SUB_ANY]
        return f"({attr.decode('ascii')}=" + "*".join([initial, *middle, final]) + ")"
    if tag == EXTENSIBLE:
        fields = dict(ber.elements(content))
        left = fields.get(MR_TYPE, b"").decode("ascii")
        if MR_DN in fields and ber.decode_boolean(fields[MR_DN]):
            left += ":dn"
        if MR_RULE in fields:
            left += ":" + fields[MR_RULE].decode("ascii")
        return f"({left}:={_value(fields[MR_VALUE])})"
    raise FilterError(f"unknown filter tag {tag:#04x}")
