"""The guard's checks of one simple command beyond Terraform's own subcommands: tfgate's ground (`protect`), PATH and
IFS changes, exec-capable options and variables (`execopts`), and opaque text run as code. A mixin of the
analyzer: it calls back into the analysis (`analyze`) for the command lines those options run."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tfgate.agents import execopts
from tfgate.agents.env import Setting
from tfgate.agents.ground import STARTUP_FILES, mentions_ground, path_change
from tfgate.agents.lexer import ParseError, _Lexer, substitutions
from tfgate.agents.programs import _block, _family, _interpreter_code, _InterpreterCode, _join, program_name
from tfgate.agents.protect import _READERS, tamper, tamper_reason
from tfgate.agents.words import (
    _ASSIGNMENT,
    _INTERPRETER,
    _KEYWORDS,
    _TF_WORD,
    ALLOW,
    OPAQUE,
    TAMPER,
    UNRESOLVED,
    Decision,
    _dequote,
    _wrapped_start,
    mentions_mutation,
)


class Checks:
    """Per-simple-command checks; the analyzer provides `ground`, `command`, `tf_line`, `path_changed`,
    `ifs_changed`, `analyze`, `_strip_prefixes` and `_runs_stdin_or_generated_code`."""

    @staticmethod
    def _dynamic_program(unquoted: Sequence[bool], words: Sequence[str]) -> bool:
        """The program word (after keywords and assignments) is an unquoted expansion."""
        for word, dyn in zip(words, unquoted, strict=True):
            if word in _KEYWORDS or word == "time" or _ASSIGNMENT.match(word):
                continue
            return dyn
        return False

    def _settings(self, found: Sequence[Setting], words: Sequence[str], depth: int) -> Decision:
        for s in found:
            if s.name == "PATH" and (s.value is None or s.value):
                self.path_changed = True
                why = path_change(s.value, self.ground) if s.value else None
                if why:  # blocked even alone: an agent's shell keeps it for the next command
                    return _block(TAMPER, f"`{_join(words)[:200]}` puts {why}, so a later `terraform` or "
                                  "`tfgate` may not be the real one. Stop here and ask a human.", words)  # fmt: skip
            if s.name == "IFS" and not s.prefix:
                self.ifs_changed = True
            if s.value and execopts.exec_var(s.name):
                d = self._payload(words, s.name, s.value, execopts.SHELL, depth)
                if not d.allowed:
                    return d
        return ALLOW

    def _guards(
        self, words: Sequence[str], writes: Sequence[str], depth: int, stdin: Sequence[str]
    ) -> Decision:
        """tfgate's own ground, PATH changes, exec-capable options and opaque code, for one simple command."""
        prog, args = words[0], words[1:]
        fam, name = _family(prog), program_name(prog)
        code = [*_interpreter_code(name, args), *stdin] if _INTERPRETER.match(name) or fam == "python" else []
        mention = next((m for c in code if (m := mentions_ground(c))), None)
        if mention is None and name in ("xargs", "parallel") and mentions_ground(_dequote(self.command)):
            start = _wrapped_start(name, args)
            run = program_name(args[start]) if start is not None and start < len(args) else "echo"
            mention = None if run in _READERS else mentions_ground(_dequote(self.command))
        if mention:
            return _block(TAMPER, tamper_reason(_join(words), mention, f"tfgate's files ({mention}), named in code "
                                                "or input this command runs on"), words)  # fmt: skip
        if fam in ("terraform", "terragrunt", "tfgate") and self.path_changed:
            return _block(
                TAMPER,
                f"`{_join(words)}` runs {name} after PATH was changed on this line, so it may not be the real "
                f"{name} (or the terraform shim); blocked (fail closed). Stop here and ask a human.",
                words,
            )
        wrapper = _wrapped_start(name, args) is not None  # the command it runs is judged as itself
        for target in writes:  # `echo 'export PATH=/tmp/x:$PATH' >> ~/.bashrc` runs in every later shell
            if program_name(target) in STARTUP_FILES:
                try:
                    d = self.analyze("\n".join([*stdin, _join(args)]), depth + 1)
                except ParseError:
                    d = _block(UNRESOLVED, f"`{_join(words)[:200]}` writes text tfgate cannot read into {target}, "
                               "which later shells run; blocked (fail closed).", words)  # fmt: skip
                if not d.allowed:
                    return d
        hit = tamper(fam if fam in ("terraform", "terragrunt", "tfgate") else name, [] if wrapper else args,
                     writes, self.ground, () if fam in ("shell", "eval") else stdin)  # fmt: skip
        if hit:
            return _block(TAMPER, tamper_reason(_join(words), *hit), words)
        if name in ("cd", "pushd") and args[:1] and not args[0].startswith(("-", "$", "~")):
            self.ground.cwd = os.path.join(self.ground.cwd or "", args[0])
        if name == "hash" and any(_family(a) in ("terraform", "tfgate") for a in args):
            return _block(UNRESOLVED, f"`{_join(words)}` makes the shell run another file as Terraform or "
                          "tfgate; blocked (fail closed).", words)  # fmt: skip
        for opt, value, kind in execopts.payloads(name, args):
            d = self._payload(words, opt, value, kind, depth)
            if not d.allowed:
                return d
        if name in ("sed", "gsed"):
            for cmd, text, _ in execopts.sed_commands(args):
                if cmd == "e":
                    d = self._payload(words, "sed e", text, execopts.SHELL if text else "line", depth)
                    if not d.allowed:
                        return d
        if name in ("crontab", "at", "batch") and not {"-l", "-r", "-e", "-c"} & set(args):
            d = self._payload(words, name, "", "line", depth)
            if not d.allowed:
                return d
        runs_text = fam in ("shell", "eval", "python") or name in ("source", ".") or _INTERPRETER.match(name)
        if self._opaque(prog) or (runs_text and any(self._opaque(a) for a in args)):
            return self._opaque_block(_join(words), None)
        return ALLOW

    def _payload(self, words: Sequence[str], opt: str, value: str, kind: str, depth: int) -> Decision:
        """A command an option runs (`tar --to-command=...`): judged as a command line (SHELL), or blocked when
        it mentions Terraform (CODE); "line"/"stdin": the line's own text is what runs."""
        seg = _join(words)
        if kind in ("line", "stdin"):
            if mentions_mutation(_dequote(self.command)) or (kind == "line" and self.tf_line):
                return _block(UNRESOLVED, f"`{seg}` runs text from this line ({opt}) that mentions Terraform; "
                              "tfgate cannot follow it, so it is blocked (fail closed).", words)  # fmt: skip
            return ALLOW
        if self._opaque(value):
            return self._opaque_block(seg, None)
        if not _TF_WORD.search(_dequote(value)):
            return ALLOW
        if kind == execopts.SHELL:
            d = self.analyze(value, depth + 1)
            if not d.allowed or not mentions_mutation(_dequote(value)):
                return d
        return _block(
            UNRESOLVED,
            f"`{seg[:200]}` runs `{value[:120]}` through `{opt}`, which tfgate cannot follow, and it mentions "
            "Terraform; blocked (fail closed).",
            words,
        )

    def _opaque(self, text: str) -> bool:
        """A substitution in this text runs a decoder or transformer (`$(echo .. | base64 -d)`)."""
        if "$(" not in text and "`" not in text and not text.startswith(("<(", ">(")):
            return False
        inner = substitutions(text) + ([text[2:-1]] if text.startswith(("<(", ">(")) else [])
        for sub in inner:
            try:
                simples, subs = _Lexer(sub).run()
            except ParseError:
                return True
            if any(self._opaque_words(s.words) for s in simples) or any(
                self._opaque(f"$({x})") for x in subs
            ):
                return True
        return False

    def _opaque_words(self, words: Sequence[str]) -> bool:
        words = self._strip_prefixes(list(words))
        return bool(words) and execopts.opaque(program_name(words[0]), words[1:])

    def _opaque_sink(self, words: Sequence[str]) -> bool:
        """This command runs code it reads from stdin (a shell, eval, an interpreter, xargs into a shell)."""
        words = self._strip_prefixes(list(words))
        if not words:
            return False
        name, args = program_name(words[0]), words[1:]
        if name in ("xargs", "parallel"):
            start = _wrapped_start(name, args)
            rest = args[start:] if start is not None else []
            return bool(rest) and (
                _family(rest[0]) in ("shell", "eval", "python")
                or bool(_INTERPRETER.match(program_name(rest[0])))
            )
        if _INTERPRETER.match(name) or _family(words[0]) == "python":
            return not _interpreter_code(name, args) and not [a for a in args if not a.startswith("-")]
        try:
            return self._runs_stdin_or_generated_code(words)
        except _InterpreterCode:
            return True

    @staticmethod
    def _opaque_block(what: str, words: Sequence[str] | None) -> Decision:
        return _block(
            OPAQUE,
            f"`{what.strip()[:200]}` runs text that is decoded, reversed or transformed first, so tfgate cannot "
            "read what the shell will run; blocked (fail closed). Write the command out in plain text.",
            words if words else what.strip()[:200],
        )
