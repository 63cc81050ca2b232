"""OpenSSH ALLOWED SIGNERS files (ssh-keygen(1); git's ``gpg.ssh.allowedSignersFile``).

One line per key: ``PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]``. PRINCIPALS is a comma-separated
pattern list (``*`` and ``?`` wildcards, ``!`` negation; quote it to include spaces). OPTIONS (names
case-insensitive, values in double quotes, as OpenSSH requires): ``cert-authority``,
``namespaces="tfgate,git"`` (a pattern list), ``valid-after="YYYYMMDD[HHMM[SS]][Z]"`` and
``valid-before=...`` (local time unless suffixed with Z). ``#`` starts a comment line.

Differences from OpenSSH, all on the refusing side: certificates are not supported, so a
``cert-authority`` line never authorizes a signature; a malformed line makes the whole file an input
error (exit 2) instead of ending the search at that line. Keys of types tfgate cannot verify
(ssh-dss, certificates) are kept but never match.

Identity: one human is one approver. Lines are the same person when they list the same key, or share a
principal: the same pattern written on both, or a literal principal of one that the other's patterns
match (``alice@example.com`` and ``*@example.com``). Sharing is transitive. So
``alice@example.com,alice@corp.example.com KEY`` is one person under two names, two keys on lines that
share a principal are one person with two keys, and a wildcard line merges with every line whose named
principals it could sign as (list principals explicitly to keep people apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from tfgate.approvals.sshsig import PublicKey, SignatureError
from tfgate.errors import TfgateError

_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$")
_OPTION = re.compile(r"([A-Za-z-]+)(=)?")


class AllowedSignersError(TfgateError):
    """The allowed-signers file is missing or malformed (exit 2)."""


@dataclass(frozen=True)
class SignerEntry:
    """One line of an allowed-signers file."""

    line: int
    principals: str  # the pattern list, as written (quotes removed)
    key: PublicKey | None  # None: a key type tfgate cannot verify
    key_text: str
    cert_authority: bool = False
    namespaces: str | None = None
    valid_after: datetime | None = None
    valid_before: datetime | None = None

    def allows_principal(self, principal: str) -> bool:
        return match_pattern_list(principal, self.principals)

    def allows_namespace(self, namespace: str) -> bool:
        return self.namespaces is None or match_pattern_list(namespace, self.namespaces)

    def validity_problem(self, when: datetime) -> str | None:
        if self.valid_after is not None and when < self.valid_after:
            return f"key not valid before {self.valid_after.isoformat()} (valid-after)"
        if self.valid_before is not None and when > self.valid_before:
            return f"key expired at {self.valid_before.isoformat()} (valid-before)"
        return None


@dataclass(frozen=True)
class Authorization:
    """Outcome of looking a (key, principal) up: ``ok`` or a ``kind`` and a ``reason``."""

    ok: bool
    kind: str  # "ok" | "unknown signer" | "wrong namespace" | "outside the signer's validity"
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class AllowedSigners:
    path: Path | None
    entries: tuple[SignerEntry, ...]

    def authorize(self, key: PublicKey, principal: str, namespace: str, when: datetime) -> Authorization:
        """May ``key`` sign as ``principal`` in ``namespace`` at ``when``? The most specific refusal wins."""
        with_key = [e for e in self.entries if e.key == key and not e.cert_authority]
        if not with_key:
            return Authorization(False, "unknown signer", f"key {key.fingerprint} is not in {self._name}")
        for_principal = [e for e in with_key if e.allows_principal(principal)]
        if not for_principal:
            lines = ", ".join(str(e.line) for e in with_key)
            return Authorization(
                False,
                "unknown signer",
                f"key {key.fingerprint} is not listed for principal {principal!r} "
                f"({self._name} line {lines})",
            )
        refusal: Authorization | None = None
        for e in for_principal:
            if not e.allows_namespace(namespace):
                refusal = refusal or Authorization(
                    False,
                    "wrong namespace",
                    f"{self._name} line {e.line} restricts key {key.fingerprint} to "
                    f'namespaces="{e.namespaces}", not {namespace!r}',
                    e.line,
                )
                continue
            problem = e.validity_problem(when)
            if problem:
                refusal = Authorization(
                    False, "outside the signer's validity", f"{self._name} line {e.line}: {problem}", e.line
                )
                continue
            return Authorization(True, "ok", f"{self._name} line {e.line}", e.line)
        assert refusal is not None
        return refusal

    @cached_property
    def _people(self) -> dict[int, int]:
        """Line number -> the first line of the same person (union of lines sharing a key or principal)."""
        parent = {e.line: e.line for e in self.entries}

        def find(n: int) -> int:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        def union(a: int, b: int) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        by_key: dict[object, int] = {}
        for e in self.entries:
            first = by_key.setdefault(e.key if e.key is not None else e.key_text, e.line)
            union(first, e.line)
        for i, a in enumerate(self.entries):
            for b in self.entries[i + 1 :]:
                if _share_principal(a.principals, b.principals):
                    union(a.line, b.line)
        return {n: find(n) for n in parent}

    def person(self, line: int) -> int:
        """Who the entry at ``line`` is: the first line of every line sharing its key or a principal."""
        return self._people[line]

    def lines_of(self, person: int) -> tuple[int, ...]:
        """Every line of one person (for messages)."""
        return tuple(n for n, p in self._people.items() if p == person)

    def lines_for_principal(self, principal: str, namespace: str) -> tuple[int, ...]:
        """Lines that let some key sign as ``principal`` in ``namespace`` (validity not considered)."""
        return tuple(
            e.line
            for e in self.entries
            if not e.cert_authority and e.allows_principal(principal) and e.allows_namespace(namespace)
        )

    def principals_for(self, key: PublicKey) -> tuple[str, ...]:
        """The principal pattern lists under which ``key`` is listed (for messages)."""
        return tuple(e.principals for e in self.entries if e.key == key and not e.cert_authority)

    @property
    def _name(self) -> str:
        return str(self.path) if self.path else "allowed_signers"


def match_pattern(name: str, pattern: str) -> bool:
    """OpenSSH ``match_pattern``: ``*`` and ``?`` wildcards, case-sensitive."""
    from tfgate.policy.manifest import glob_to_regex

    return re.fullmatch(glob_to_regex(pattern), name, re.DOTALL) is not None


def _patterns(principals: str) -> tuple[str, ...]:
    """The positive patterns of a principals field (negations only narrow a line: ignored here)."""
    return tuple(p for raw in principals.split(",") if (p := raw.strip()) and not p.startswith("!"))


def _share_principal(a: str, b: str) -> bool:
    """Could two principals fields name one principal? Equal patterns, or a literal of one matched by the
    other (fail closed: two wildcard-only lines with different patterns are kept apart only if neither
    names the other)."""
    pa, pb = _patterns(a), _patterns(b)
    if set(pa) & set(pb):
        return True
    literal = re.compile(r"^[^*?]+$")
    return any(
        literal.match(x) and match_pattern(x, y) for xs, ys in ((pa, pb), (pb, pa)) for x in xs for y in ys
    )


def match_pattern_list(name: str, patterns: str) -> bool:
    """OpenSSH ``match_pattern_list``: any positive match and no negated (``!``) match."""
    matched = False
    for raw in patterns.split(","):
        pattern = raw.strip()
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        if pattern and match_pattern(name, pattern):
            if negated:
                return False
            matched = True
    return matched


def parse_time(text: str) -> datetime:
    """``YYYYMMDD[Z]`` or ``YYYYMMDDHHMM[SS][Z]``; local time unless suffixed with Z."""
    m = _TIME.match(text)
    if not m:
        raise ValueError(f"invalid time {text!r} (use YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])")
    year, month, day, hour, minute, second, zulu = m.groups()
    when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    if zulu:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone()  # naive -> the system's local time zone, as OpenSSH does


def _token(text: str, pos: int) -> tuple[str, int]:
    """OpenSSH ``strdelimw``: a whitespace-delimited token, or a double-quoted one (quotes removed)."""
    if text.startswith('"', pos):
        end = text.find('"', pos + 1)
        if end < 0:
            raise ValueError("unterminated quote in principals")
        return text[pos + 1 : end], end + 1
    end = pos
    while end < len(text) and text[end] not in " \t":
        end += 1
    return text[pos:end], end


def _options_end(text: str, pos: int) -> int:
    """Where an options field ends: the first blank outside double quotes."""
    quoted = False
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and quoted and pos + 1 < len(text):
            pos += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return pos
        pos += 1
    if quoted:
        raise ValueError("unterminated quote in options")
    return pos


def _parse_options(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    pos = 0
    while pos < len(text):
        m = _OPTION.match(text, pos)
        if not m:
            raise ValueError(f"bad option syntax at {text[pos:]!r}")
        name = m.group(1).lower()
        pos = m.end()
        if name == "cert-authority" and not m.group(2):
            if name in out:
                raise ValueError('multiple "cert-authority" options')
            out[name] = True
        elif name in ("namespaces", "valid-after", "valid-before") and m.group(2):
            if name in out:
                raise ValueError(f'multiple "{name}" clauses')
            if not text.startswith('"', pos):
                raise ValueError(f'{name}= needs a double-quoted value, e.g. {name}="..."')
            end = text.find('"', pos + 1)
            if end < 0:
                raise ValueError(f"missing end quote in {name}")
            value = text[pos + 1 : end]
            pos = end + 1
            out[name] = value if name == "namespaces" else parse_time(value)
        else:
            raise ValueError(f"unknown option {m.group(0)!r}")
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"unknown key option at {text[pos:]!r}")
            pos += 1
            if pos == len(text):
                raise ValueError("unexpected end of options")
    after, before = out.get("valid-after"), out.get("valid-before")
    if isinstance(after, datetime) and isinstance(before, datetime) and before <= after:
        raise ValueError('"valid-before" time is before "valid-after"')
    return out


_KEY_NAME = re.compile(r"^(ssh-|ecdsa-|sk-ssh-|sk-ecdsa-)[A-Za-z0-9@.-]+$")


def parse_line(line: str, number: int) -> SignerEntry | None:
    """One line; None for blank and comment lines; ValueError when malformed."""
    text = line.strip(" \t\r\n")
    if not text or text.startswith("#"):
        return None
    principals, pos = _token(text, 0)
    if not principals:
        raise ValueError("empty principals")
    rest = text[pos:].lstrip(" \t")
    options: dict[str, object] = {}
    first = rest.split(None, 1)[0] if rest.split() else ""
    if not _KEY_NAME.match(first):
        end = _options_end(rest, 0)
        options = _parse_options(rest[:end])
        rest = rest[end:].lstrip(" \t")
    fields = rest.split()
    if len(fields) < 2:
        raise ValueError("missing key (expected KEYTYPE BASE64)")
    key_text = f"{fields[0]} {fields[1]}"
    try:
        key: PublicKey | None = PublicKey.from_openssh(key_text)
    except SignatureError as exc:
        if exc.kind != "unsupported":
            raise ValueError(f"invalid key: {exc}") from None
        key = None
    return SignerEntry(
        line=number,
        principals=principals,
        key=key,
        key_text=key_text,
        cert_authority=bool(options.get("cert-authority")),
        namespaces=options.get("namespaces"),  # type: ignore[arg-type]
        valid_after=options.get("valid-after"),  # type: ignore[arg-type]
        valid_before=options.get("valid-before"),  # type: ignore[arg-type]
    )


def parse(text: str, path: Path | None = None) -> AllowedSigners:
    """Parse a whole file; any malformed line is an AllowedSignersError naming the line."""
    entries: list[SignerEntry] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = parse_line(line, number)
        except ValueError as exc:
            raise AllowedSignersError(f"{path or 'allowed_signers'}:{number}: {exc}") from None
        if entry is not None:
            entries.append(entry)
    return AllowedSigners(path, tuple(entries))


def load(path: Path) -> AllowedSigners:
    """Read and parse an allowed-signers file (missing or unreadable: AllowedSignersError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AllowedSignersError(f"allowed signers file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AllowedSignersError(f"cannot read allowed signers file {path}: {exc}") from None
    return parse(text, path)
