"""The guard's shell lexer: splits a command line into simple commands the way a POSIX shell would (quotes,
escapes, operators, subshells, substitutions, heredocs), bounded and failing closed (ParseError)."""

from __future__ import annotations

import codecs
import re

from tfgate.agents.words import lazy_re

# --- lexing ------------------------------------------------------------------------------------------


_HEREDOC_START = lazy_re(r"<<-?[ \t]*['\"]?([A-Za-z_][\w-]*)['\"]?")


class ParseError(Exception):
    """The command line is not valid shell (e.g. an unbalanced quote)."""


class _Simple:
    """One simple command as the lexer builds it (mutable while lexing)."""

    __slots__ = ("end", "quoted", "start", "stdin_texts", "words", "writes")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.start = 0
        self.end = 0
        #: Bodies of heredocs and here-strings fed to this command's stdin.
        self.stdin_texts: list[str] = []
        #: Whether each word had quotes (a quoted "$X" is one word after expansion, not split).
        self.quoted: list[bool] = []
        #: Files this command writes through `>`, `>>`, `>|`, `&>`, `<>`.
        self.writes: list[str] = []


class _Lexer:
    """A small POSIX-shell lexer: simple commands (words with quotes removed) plus nested command texts."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.commands: list[_Simple] = []
        self.subs: list[str] = []
        self.cur = _Simple()
        self.word: list[str] | None = None
        self.word_quoted = False
        self.redirect: str | None = None
        self.heredocs: list[tuple[str, bool, _Simple, bool]] = []

    # word and command boundaries
    def _end_word(self) -> None:
        if self.word is None:
            return
        word = "".join(self.word)
        self.word = None
        quoted, self.word_quoted = self.word_quoted, False
        redirect, self.redirect = self.redirect, None
        if redirect in ("<<", "<<-"):
            self.heredocs.append((word, redirect == "<<-", self.cur, quoted))
        elif redirect == "write" or (redirect == "dup" and not word.isdigit() and word != "-"):
            self.cur.writes.append(word)  # `>&file` writes it; `2>&1` duplicates a descriptor
        elif redirect == "<<<":
            self.cur.stdin_texts.append(word)
        elif redirect is None:
            if not self.cur.words:
                self.cur.start = self._word_start
            self.cur.words.append(word)
            self.cur.quoted.append(quoted)
            self.cur.end = self.i

    def _end_command(self) -> None:
        self._end_word()
        if self.cur.words or self.cur.stdin_texts:
            self.commands.append(self.cur)
        self.cur = _Simple()
        self.redirect = None

    def _add(self, text: str) -> None:
        if self.word is None:
            self.word = []
            self._word_start = self.i
        self.word.append(text)

    def run(self) -> tuple[list[_Simple], list[str]]:
        s = self.s
        while self.i < self.n:
            c = s[self.i]
            if c in " \t\r":
                self._end_word()
                self.i += 1
            elif c == "\n":
                self._end_command()
                self.i += 1
                self._read_heredocs()
            elif c == "#" and self.word is None:
                while self.i < self.n and s[self.i] != "\n":
                    self.i += 1
            elif c == "\\":
                if self.i + 1 < self.n and s[self.i + 1] == "\n":
                    self.i += 2
                else:
                    self._add(s[self.i + 1 : self.i + 2] or "\\")
                    self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ParseError("unbalanced single quote")
                self._add(s[self.i + 1 : end])
                self.word_quoted = True
                self.i = end + 1
            elif c == '"':
                self._add("")
                self.word_quoted = True
                self._double_quoted()
            elif c == "$":
                self._dollar()
            elif c == "`":
                self._add(self._backtick())
            elif c in "<>":
                if self.i + 1 < self.n and s[self.i + 1] == "(":
                    self._add(self._paren(self.i + 2, c))
                    continue
                if self.word is not None and "".join(self.word).isdigit():
                    self.word = None  # a file descriptor number: 2>file
                self._end_word()
                for op in ("<<<", "<<-", "<<", "<>", "<&", "<", ">>", ">|", ">&", ">"):
                    if s.startswith(op, self.i):
                        self.i += len(op)
                        self.redirect = (
                            op
                            if op in ("<<<", "<<-", "<<")
                            else "write"
                            if op in (">", ">>", ">|", "<>")
                            else "dup"
                            if op == ">&"
                            else "file"
                        )
                        break
            elif c == "&":
                if s.startswith("&>", self.i):
                    self._end_word()
                    self.i += 3 if s.startswith("&>>", self.i) else 2
                    self.redirect = "write"
                else:
                    self._end_command()
                    self.i += 2 if s.startswith("&&", self.i) else 1
            elif c == "(" and s.startswith("((", self.i) and self.word is None:
                self._arithmetic()
            elif c in "|;()":
                self._end_command()
                self.i += 1
            else:
                self._add(c)
                self.i += 1
        self._end_command()
        if self.heredocs:
            self._read_heredocs()
        return self.commands, self.subs

    def _read_heredocs(self) -> None:
        s = self.s
        for delim, strip, owner, quoted in self.heredocs:
            body: list[str] = []
            while self.i < self.n:
                end = s.find("\n", self.i)
                end = self.n if end < 0 else end
                line = s[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip else line) == delim:
                    break
                body.append(line)
            text = "\n".join(body)
            owner.stdin_texts.append(text)
            if not quoted:  # an unquoted heredoc runs its $(...) and `...`; a quoted one is plain text
                self.subs.extend(substitutions(text))
        self.heredocs = []

    def _double_quoted(self) -> None:
        s = self.s
        self.i += 1
        while True:
            if self.i >= self.n:
                raise ParseError("unbalanced double quote")
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                nxt = s[self.i + 1 : self.i + 2]
                if nxt == "\n":
                    pass
                elif nxt in ('"', "\\", "$", "`"):
                    self._add(nxt)
                else:
                    self._add("\\" + nxt)
                self.i += 2
            elif c == "$":
                self._dollar()
            elif c == "`":
                self._add(self._backtick())
            else:
                self._add(c)
                self.i += 1

    def _dollar(self) -> None:
        s = self.s
        nxt = s[self.i + 1 : self.i + 2]
        if nxt == "(":
            self._add(self._paren(self.i + 2, "$"))
        elif nxt == "'":
            j = self.i + 2
            while j < self.n and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            if j >= self.n:
                raise ParseError("unbalanced $'...' quote")
            raw = s[self.i + 2 : j]
            try:
                self._add(codecs.decode(raw.encode("latin-1", "backslashreplace"), "unicode_escape"))
            except (UnicodeDecodeError, ValueError):
                self._add(raw)
            self.i = j + 1
        elif nxt == "{":
            end = self._closing(self.i + 2, "{", "}", "${")
            inner = s[self.i + 2 : end]
            self.subs.extend(substitutions(inner))  # ${x:-$(cmd)} runs cmd
            self._add(s[self.i : end + 1])
            self.i = end + 1
        elif nxt == '"':  # $"..." is a (locale-translated) double-quoted string
            self.i += 1
        else:
            self._add("$")
            self.i += 1

    def _closing(self, start: int, opener: str, closer: str, what: str) -> int:
        """Index of the `closer` that balances an `opener` just before `start`; quotes, escapes and
        nesting are honoured (single quotes take no escapes)."""
        s, depth, j = self.s, 1, start
        while j < self.n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "<" and opener == "(" and (m := _HEREDOC_START.match(s, j)):
                # a heredoc inside $( ... ): its body is text, apostrophes and parentheses included
                eol = s.find("\n", m.end())
                end = (
                    re.compile(rf"(?m)^\t*{re.escape(m.group(1))}$").search(s, eol + 1) if eol >= 0 else None
                )
                if end is None:
                    raise ParseError(f"unterminated heredoc in {what}")
                j = end.end()
                continue
            if c in "'\"`":
                k = j + 1
                while k < self.n and s[k] != c:
                    k += 2 if s[k] == "\\" and c != "'" else 1
                if k >= self.n:
                    raise ParseError(f"unbalanced quote in {what}")
                j = k + 1
                continue
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        raise ParseError(f"unbalanced {what}")

    def _arithmetic(self) -> None:
        """``(( ... ))``: an arithmetic command (no heredocs in it); its text is also analysed as
        commands, because bash reads ``((cd x; cmd))`` as nested subshells when it is not arithmetic."""
        s, depth, j = self.s, 0, self.i
        while j < self.n:
            if s[j] == "(":
                depth += 1
            elif s[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= self.n:
            raise ParseError("unbalanced ((")
        inner = s[self.i + 2 : j - 1] if s[j - 1] == ")" else s[self.i + 2 : j]
        self._end_command()
        self.subs.extend(substitutions(inner))
        self.subs.append(inner.replace("<<", " "))
        self.i = j + 1

    def _backtick(self) -> str:
        s = self.s
        j = self.i + 1
        inner: list[str] = []
        while j < self.n and s[j] != "`":
            if s[j] == "\\" and j + 1 < self.n:
                inner.append(s[j + 1] if s[j + 1] in "`\\$" else s[j : j + 2])
                j += 2
            else:
                inner.append(s[j])
                j += 1
        if j >= self.n:
            raise ParseError("unbalanced backtick")
        self.subs.append("".join(inner))
        self.i = j + 1
        return "$(" + "".join(inner) + ")"

    def _paren(self, start: int, sigil: str) -> str:
        """Text of a ``$(...)``/``<(...)`` substitution starting after its ``(``; recorded for analysis."""
        end = self._closing(start, "(", ")", "parenthesis")
        inner = self.s[start:end]
        self.subs.append(inner)
        self.i = end + 1
        return f"{sigil}({inner})"


def substitutions(text: str) -> list[str]:
    """The ``$(...)`` and backtick command texts inside a piece of text that is not itself a command line
    (a heredoc body, the inside of ``${...}``), where the shell still runs them."""
    if "$(" not in text and "`" not in text:
        return []
    lexer = _Lexer(text)
    i = 0
    while i < len(text):
        if text.startswith("$(", i) and not text.startswith("$((", i):
            lexer.i = i
            lexer._paren(i + 2, "$")
            i = lexer.i
        elif text[i] == "`":
            lexer.i = i
            lexer._backtick()
            i = lexer.i
        else:
            i += 1
    return lexer.subs


def split_commands(command: str) -> tuple[list[list[str]], list[str]]:
    """The simple commands (as word lists) and the nested command texts of a command line (for tests)."""
    simples, subs = _Lexer(command).run()
    return [s.words for s in simples], subs


def _braces(word: str) -> list[str]:
    """Bash brace expansion of one ``pre{a,b}post`` group (enough to see ``{terraform,apply}``)."""
    m = re.fullmatch(r"([^{}]*)\{([^{}]*,[^{}]*)\}([^{}]*)", word)
    if not m:
        return [word]
    out = [m.group(1) + alt + m.group(3) for alt in m.group(2).split(",")]
    return [w for w in out if w]
