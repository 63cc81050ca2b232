"""The AI-agent guard: decides whether a shell command line may run Terraform without tfgate.

`check_command` lexes a command line the way a POSIX shell would (quotes, escapes, ``&&``, ``||``, ``;``,
``|``, ``&``, newlines, subshells, ``$(...)``, backticks, process substitution, heredocs fed to a shell),
then looks at every simple command: leading ``VAR=x`` assignments and keywords are stripped, wrappers
(``sudo``, ``env``, ``nohup``, ``time``, ``xargs``, ``timeout``, ``find -exec`` ...) are seen through by
scanning for a Terraform-family word anywhere in the command, and command strings handed to ``sh -c``,
``bash -lc``, ``eval``, ``env -S``, ``su -c``, ``watch``, ``ssh`` are analysed recursively.

Blocked: Terraform/OpenTofu/Terragrunt ``apply``, ``destroy``, ``refresh``, state-mutating commands
(``state rm|mv|push|replace-provider``, ``import``, ``taint``, ``untaint``, ``force-unlock``,
``workspace delete``), an agent signing its own approval (``tfgate approve``, ``ssh-keygen -Y sign -n
tfgate``), unknown Terraform subcommands, and command lines that cannot be parsed but mention Terraform
(fail closed). Everything else, including ``tfgate plan/apply/destroy``, passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tfgate.agents.checks import Checks
from tfgate.agents.env import settings, steering
from tfgate.agents.ground import STARTUP_FILES, Ground, mentions_ground
from tfgate.agents.lexer import ParseError, _braces, _Lexer, _Simple
from tfgate.agents.programs import (
    _RUNS_STDIN,
    _SSH_KEYGEN_VALUED,
    _STDIN_NAMES,
    _block,
    _family,
    _interpreter_code,
    _InterpreterCode,
    _join,
    _option_at,
    _option_value,
    _shell_script,
    _shell_string,
    _ssh_remote,
    _terraform,
    _terragrunt,
    _tfgate,
    classify_terraform,
    program_name,
)
from tfgate.agents.protect import tamper_reason
from tfgate.agents.words import (
    _ASSIGNMENT,
    _INTERPRETER,
    _KEYWORDS,
    _MUTATING_WORDS,
    _NON_EXECUTING,
    _RUNS_ARGS_AS_CODE,
    _TF_WORD,
    _TFGATE_COMMANDS,
    _VAR_REF,
    _VERSION_MANAGERS,
    ALLOW,
    MAX_COMMAND,
    MAX_DEPTH,
    MAX_STEPS,
    MAX_VALUE,
    SELF_APPROVAL,
    TAMPER,
    UNKNOWN,
    UNPARSEABLE,
    UNRESOLVED,
    Decision,
    _dequote,
    _wrapped_start,
    _wraps,
    mentions_mutation,
)

#: Programs that run commands from a file they are given (`ssh -F cfg` with ProxyCommand, `crontab FILE`,
#: `at -f`, `sed -f`, `vim -S`, `gdb -x`, `expect FILE`, `tar -T`... ): a file written on the line is their code.
_READS_COMMANDS_FROM = frozenset(
    {"ssh", "scp", "sftp", "crontab", "at", "batch", "sed", "gsed", "vim", "nvim", "vi", "ex", "expect", "gdb",
     "tar", "git", "less", "rsync", "zip"}
)  # fmt: skip


class _Analyzer(Checks):
    def __init__(self, command: str, cwd: str | None = None) -> None:
        self.ground = Ground(cwd)
        #: PATH or IFS was changed on this line (not just for one command): Terraform and tfgate found
        #: through PATH, and words split by IFS, are no longer what a static reading sees.
        self.path_changed = False
        self.ifs_changed = False
        self.vars: dict[str, str] = {}
        self.ambiguous: set[str] = set()
        self.steps = 0
        #: The line names a Terraform-family program somewhere (quotes removed): unknown programs given
        #: a mutating word on such a line are blocked (`ln -s $(command -v terraform) tf && ./tf apply`).
        self.tf_line = bool(_TF_WORD.search(_dequote(command)))
        self.command = command
        #: Names that appear as arguments on the line (`cp ... ~/bin/tf`, `ln -s ... ./tf`, `alias tf=...`): a
        #: program so named was made here, so given `apply` on a Terraform line it blocks.
        self.arg_names: set[str] = set()
        try:
            simples, _ = _Lexer(command).run()
        except ParseError:
            simples = []
        for simple in simples:
            for word in simple.words[1:]:
                self.arg_names.add(program_name(word.partition("=")[0]))
                self.arg_names.add(program_name(word))

    def analyze(self, command: str, depth: int) -> Decision:
        if depth > MAX_DEPTH:
            raise ParseError("command nested too deeply")
        simples, subs = _Lexer(command).run()
        for sub in subs:
            d = self.analyze(sub, depth + 1)
            if not d.allowed:
                return d
        for simple in simples:
            d = self.simple(
                simple.words, depth, direct=True, stdin=simple.stdin_texts, quoted=simple.quoted,
                writes=simple.writes,
            )  # fmt: skip
            if not d.allowed:
                return d
        d = self._written_then_run(simples, depth)
        if not d.allowed:
            return d
        # Code can come down stdin only when the line feeds it (a pipe, a heredoc or here-string, a `<`
        # redirect, a process substitution): `docker exec -it c sh` reads the terminal, not this line.
        fed = "|" in command or "<" in command or any(s.stdin_texts for s in simples)
        try:
            feeds_code = fed and any(self._runs_stdin_or_generated_code(s.words) for s in simples)
        except _InterpreterCode as exc:
            return _block(
                UNRESOLVED,
                f"`{command.strip()[:200]}` feeds {exc.args[0]} code that mentions a Terraform mutation; tfgate "
                "cannot follow code, so it is blocked (fail closed). Use `tfgate plan` / `tfgate apply`.",
                command.strip()[:200],
            )
        if fed and any(self._opaque_sink(s.words) for s in simples):
            culprit = next((s for s in simples if self._opaque_words(s.words)), None)
            if culprit is not None or any(self._opaque(sub) for sub in subs):
                return self._opaque_block(command, culprit.words if culprit else None)
        if feeds_code:
            # Something on this line runs code it reads (`... | bash`, `source /dev/stdin`, `source <(...)`):
            # every word, heredoc and substitution on the line may be that code.
            d = self._as_code(
                [
                    *(w for s in simples for w in s.words),
                    *(_join(s.words[1:]) for s in simples),  # what `echo terraform apply` prints
                    *(t for s in simples for t in s.stdin_texts),
                    *subs,
                ],
                depth,
                ground=any(self._opaque_sink(s.words) for s in simples),  # a shell reads it, not `xargs rm`
            )
            if not d.allowed:
                return d
        return ALLOW

    def _written_then_run(self, simples: Sequence[_Simple], depth: int) -> Decision:
        """A file written on this line (`> run.sh`, a heredoc to `cat > x.py`) and run later on it (`sh run.sh`,
        `./run.sh`, `source`, `python3 x.py`, `make` of a written Makefile): its content is judged as code."""
        written: dict[str, list[str]] = {}
        opaque: set[str] = set()  # written by a decoder (`base64 -d > run.sh`): its content cannot be read
        for simple in simples:
            for target in simple.writes:
                content = [*simple.stdin_texts, _join(simple.words[1:])]
                written.setdefault(program_name(target), []).extend(content)
                if self._opaque_words(simple.words):
                    opaque.add(program_name(target).lower())
        if not written:
            return ALLOW
        for simple in simples:
            words = self._strip_prefixes(list(simple.words))
            if not words:
                continue
            name = program_name(words[0])
            runs = {name}
            if (
                _family(words[0]) in ("shell", "python", "eval")
                or _INTERPRETER.match(name)
                or name in ("source", ".", "make", "gmake", "just", "task", "bash", "sh")
                or name in _READS_COMMANDS_FROM
            ):
                runs.update(program_name(a) for a in words[1:])
                if name in ("make", "gmake"):
                    runs.update({"makefile", "gnumakefile"})
            for target, content in written.items():
                if target.lower() in {r.lower() for r in runs} and simple.writes == []:
                    if target.lower() in opaque:
                        return self._opaque_block(_join(words), words)
                    text = "\n".join(content)
                    if mentions_mutation(_dequote(text)):
                        return _block(
                            UNRESOLVED,
                            f"`{_join(words)[:200]}` runs {target}, written on this line with content that "
                            "mentions a Terraform mutation; blocked (fail closed). Use `tfgate plan` / "
                            "`tfgate apply`.",
                            words,
                        )
                    d = self._as_code([text], depth)
                    if not d.allowed:
                        return d
        return ALLOW

    def _as_code(self, texts: Sequence[str], depth: int, *, ground: bool = False) -> Decision:
        for text in texts:
            if _TF_WORD.search(_dequote(text)) or (ground and mentions_ground(text)):
                d = self.analyze(text, depth + 1)
                if not d.allowed:
                    return d
                inner, subs = _Lexer(text).run()
                d = self._as_code(
                    [w for s in inner for w in s.words[1:]] + [_join(s.words[1:]) for s in inner] + subs,
                    depth + 1,
                )
                if not d.allowed:
                    return d
        return ALLOW

    def _runs_stdin_or_generated_code(self, words: Sequence[str], depth: int = 0) -> bool:
        """Something that runs code it reads from stdin or generates: a shell with no command string or
        script (or `-s`, /dev/stdin, a process substitution), `source`/`.` of stdin, `eval`, `xargs`
        (its input becomes command lines), `ssh` to a remote shell reading stdin; after any prefixes and
        wrappers. An interpreter reading code on a line that mentions a Terraform mutation raises."""
        if depth > MAX_DEPTH:
            raise ParseError("command nested too deeply")
        words = self._strip_prefixes(list(words))
        for j, word in enumerate(words):
            name = program_name(word)
            args = words[j + 1 :]
            if name in ("source", ".", "eval"):
                return name == "eval" or any(a in _STDIN_NAMES or a.startswith(("<(", "$(")) for a in args)
            if name in ("xargs", "parallel"):
                return True
            if _family(word) == "shell":
                text = _shell_string(args)
                if text is not None:  # `sh -c sh`: the inner command may read stdin itself
                    try:
                        inner, _ = _Lexer(text).run()
                    except ParseError:
                        return True
                    return any(self._runs_stdin_or_generated_code(i.words, depth + 1) for i in inner)
                script, reads_flag = _shell_script(args)
                return (
                    script is None or reads_flag or script in _STDIN_NAMES or script.startswith(("<(", "$("))
                )
            if name == "ssh":
                remote = _ssh_remote(args)
                if remote is None:
                    return True  # no remote command: the remote login shell reads stdin
                try:
                    inner, _ = _Lexer(remote).run()
                except ParseError:
                    return True
                return any(self._runs_stdin_or_generated_code(i.words, depth + 1) for i in inner)
            if _INTERPRETER.match(name):
                # Code from stdin (no script, or /dev/stdin) comes down the pipe: the whole line is judged.
                # Code given with -c/-e is judged where it stands (in simple()).
                code_args = [a for a in args if not a.startswith("-")]
                code = _interpreter_code(name, args)
                from_stdin = (not code and (not code_args or code_args[0] in _STDIN_NAMES)) or any(
                    _RUNS_STDIN.search(c) for c in code
                )
                if from_stdin and mentions_mutation(_dequote(self.command)):
                    raise _InterpreterCode(name)
                return False
            if name in _NON_EXECUTING:
                return False
        return False

    def _strip_prefixes(self, words: list[str]) -> list[str]:
        k = 0
        while k < len(words) and (words[k] in _KEYWORDS or words[k] == "time"):
            k += 1
            while words[k - 1] == "time" and k < len(words) and words[k] == "-p":
                k += 1
        while k < len(words) and _ASSIGNMENT.match(words[k]):
            k += 1
        return words[k:]

    def _assign(self, name: str, value: str) -> None:
        """Record a value; a variable given different values on one line (in a subshell, a child shell,
        a branch) is ambiguous to a static reading and stays unexpanded: `$A` then blocks as unknown."""
        if name in self.vars and self.vars[name] != value:
            self.ambiguous.add(name)
        self.vars[name] = value

    def _expand(self, word: str, quoted: bool = False) -> list[str]:
        """Variables this line set, then word splitting (unquoted words only) and brace expansion, as the
        shell would."""
        out = word
        if "$" in word and self.vars:
            out = _VAR_REF.sub(self._lookup, word)
        if quoted:
            return [out]
        words = out.split() if out != word and any(c.isspace() for c in out) else [out]
        return [b for w in words for b in _braces(w)]

    def _lookup(self, m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return m.group(0) if name in self.ambiguous else self.vars.get(name, m.group(0))

    def simple(
        self,
        words: Sequence[str],
        depth: int,
        *,
        direct: bool,
        stdin: Sequence[str] = (),
        quoted: Sequence[bool] = (),
        writes: Sequence[str] = (),
    ) -> Decision:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ParseError("command line too complex to analyse")
        flags = list(quoted) + [False] * (len(words) - len(quoted))
        unquoted = [("$" in w or "`" in w) and not q for w, q in zip(words, flags, strict=True)]
        dynamic_program = self._dynamic_program(unquoted, words)
        words = [e for w, q in zip(words, flags, strict=True) for e in self._expand(w, q)]
        k = 0
        while k < len(words) and (words[k] in _KEYWORDS or words[k] == "time"):
            k += 1
            while words[k - 1] == "time" and k < len(words) and words[k] == "-p":
                k += 1
        assignments = []
        while k < len(words) and _ASSIGNMENT.match(words[k]):
            assignments.append(words[k])
            k += 1
        found = list(settings(assignments, words[k:]))
        steered = steering(found)
        if steered:
            return _block(
                TAMPER if steered.startswith("TFGATE_") else UNRESOLVED,
                f"`{_join(words)}` sets `{steered}`, which changes what Terraform or tfgate runs, judges or "
                "records without showing it on the command line; blocked (fail closed). Stop here and ask a human.",
                words,
            )
        d = self._settings(found, words, depth)
        if not d.allowed:
            return d
        if self.ifs_changed and (dynamic_program or (self.tf_line and any(unquoted))):
            return _block(
                UNRESOLVED,
                f"`{_join(words)}` expands a variable after IFS was changed on this line, so tfgate cannot tell "
                "how the shell splits it into words; blocked (fail closed).",
                words,
            )
        words = words[k:]
        if not words:
            # Only assignments: they stay set for the rest of the line (a prefix assignment does not).
            for a in assignments:
                name, _, value = a.partition("=")
                if len(value) > MAX_VALUE:
                    raise ParseError("variable value too long to analyse")
                self._assign(name.rstrip("+"), value)
            return ALLOW
        d = self._guards(words, writes, depth, stdin)
        if not d.allowed:
            return d
        prog, args = words[0], words[1:]
        fam = _family(prog)
        name = program_name(prog)
        if fam == "terraform":
            return _terraform(args, words)
        if fam == "terragrunt":
            return _terragrunt(args, words)
        if fam == "tfgate":
            return _tfgate(args, words)
        if name in _VERSION_MANAGERS and args[:1] == ["exec"]:
            return _terraform(args[1:], words)
        if fam == "python":
            module, after = _option_at(args, "-m", valued="cWX")
            if module is not None:
                rest = list(args[after:]) if after >= 0 else []
                if module.startswith("tfgate.") and module.endswith(".embedded"):  # any path it had
                    return _terraform(rest, words)
                if module in ("tfgate", "tfgate.cli"):
                    return _tfgate(rest, words)
                if module.startswith(
                    ("tfgate.enforce", "tfgate.approvals")
                ):  # the shim's and approvals' insides
                    return _tfgate(["shim-exec", *rest], words)
        if fam == "shell":
            if name == "busybox":
                return self.simple(args, depth, direct=direct) if args else ALLOW
            text = _shell_string(args) or _option_value(args, "--command")
            if text is not None:
                return self.analyze(text, depth + 1)
        if fam == "eval":
            return self.analyze(_join(args), depth + 1)
        if _INTERPRETER.match(name) and mentions_mutation(
            _dequote(" ".join([*_interpreter_code(name, args), *stdin]))
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)[:200]}` runs {name} code that mentions a Terraform mutation; tfgate cannot "
                "follow code, so it is blocked (fail closed). Use `tfgate plan` / `tfgate apply`.",
                words,
            )
        if "$" in prog and (
            any(a in _MUTATING_WORDS for a in args)
            or mentions_mutation(_dequote(self.command))
            or (self.tf_line and (not args or any("$" in a or "`" in a for a in args)))
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)}`: tfgate cannot tell which program `{prog}` is, on a line that mentions "
                "Terraform or gives it a mutating command; blocked (fail closed). "
                "Call Terraform by name through `tfgate plan` / `tfgate apply`.",
                words,
            )
        nested: str | None = None
        if name == "env":
            nested = _option_value(args, "-S", "--split-string", valued="uC")
        elif name in ("su", "runuser", "flock", "script", "sg"):
            nested = _option_value(args, "-c", "--command", valued="gGswEIOTBm")
        elif name == "nix-shell":
            nested = _option_value(args, "--run") or _option_value(args, "--command")
        elif name in _RUNS_ARGS_AS_CODE:
            d = self._as_code(args, depth)
            if not d.allowed:
                return d
        elif name in ("at", "batch"):
            d = self._as_code(stdin, depth)
            if not d.allowed:
                return d
        elif name == "watch":
            nested = _join(a for a in args if not a.startswith("-"))
        elif name == "ssh":
            nested = _ssh_remote(args)
        elif name == "alias":
            for a in args:
                _, eq, value = a.partition("=")
                if eq and _TF_WORD.search(value):
                    return _block(
                        UNRESOLVED,
                        f"`{_join(words)}` makes an alias for Terraform, which tfgate cannot follow; blocked "
                        "(fail closed). Call Terraform by name, through `tfgate plan` / `tfgate apply`.",
                        words,
                    )
            nested = "\n".join(a.partition("=")[2] for a in args if "=" in a)
        elif name == "git":
            nested = "\n".join(
                v.partition("=")[2].lstrip("!")
                for k, v in enumerate(args)
                if k and args[k - 1] == "-c" and v.startswith("alias.") and "=!" in v
            )
        elif name == "ssh-keygen" and _option_value(args, "-Y", valued=_SSH_KEYGEN_VALUED) == "sign":
            namespace = _option_value(args, "-n", valued=_SSH_KEYGEN_VALUED) or ""
            if "tfgate" in namespace or "$" in namespace or "`" in namespace:
                return _block(
                    SELF_APPROVAL,
                    f"`{_join(words)}` signs a tfgate approval. Approvals must come from a human reviewer.",
                    words,
                )
        elif name in ("command", "builtin") and args[:1] and args[0] in ("-v", "-V"):
            return ALLOW
        if nested:
            d = self.analyze(nested, depth + 1)
            if not d.allowed:
                return d
        if not direct or name in _NON_EXECUTING:
            return ALLOW
        # Wrappers whose syntax tfgate knows (sudo, nohup, timeout, env, nice, xargs ...): the command they
        # run is judged as a command of its own (`sudo mv terraform /usr/local/bin` is an mv).
        start = _wrapped_start(name, args)
        if start is not None and name not in ("xargs", "parallel"):
            return self.simple(args[start:], depth, direct=True, stdin=stdin) if start < len(args) else ALLOW
        scan_from = 1
        if name == "find":  # find runs commands only after -exec/-execdir/-ok/-okdir
            marks = [k for k, w in enumerate(words) if w in ("-exec", "-execdir", "-ok", "-okdir")]
            if not marks:
                return ALLOW
            scan_from = marks[0] + 1
        # Other wrappers (xargs, uv run, aws-vault exec, docker run ...) and programs tfgate does not know:
        # the first Terraform-family (or shell, tfgate, ssh-keygen) word further on starts the command they
        # run; judge it, and stop there (the rest are its arguments).
        for j in range(scan_from, len(words)):
            word = words[j]
            flag, eq, value = word.partition("=")
            # docker run --entrypoint=terraform IMAGE apply: the program comes in a flag's value
            if (
                eq
                and flag.startswith("-")
                and _family(value) in ("terraform", "terragrunt")
                and any(w in _MUTATING_WORDS for w in words[j + 1 :])
            ):
                return _block(
                    UNRESOLVED,
                    f"`{_join(words)}` runs Terraform (`{word}`) with a mutating command; blocked.",
                    words,
                )
            fam_j = _family(word)
            if fam_j == "tfgate":
                if j + 1 < len(words) and words[j + 1] not in _TFGATE_COMMANDS:
                    continue  # a path or name that happens to be "tfgate" (flock /tmp/tfgate ...)
                return _tfgate(words[j + 1 :], words[j:])
            if fam_j in ("terraform", "terragrunt", "shell", "eval", "python") or program_name(word) in (
                "ssh-keygen",
                *_VERSION_MANAGERS,
            ):
                d = self.simple(words[j:], depth, direct=False, stdin=stdin)
                if not d.allowed and (
                    d.code != UNKNOWN or _wraps(name, args) or any("$" in w or "{" in w for w in words[j:])
                ):
                    return d
                if fam_j == "terraform" and name in ("xargs", "parallel"):
                    what = classify_terraform(words[j + 1 :])
                    if what.index < 0 or ":::" in words[j + 1 :]:
                        return _block(
                            UNRESOLVED,
                            f"`{_join(words)}`: {name} adds Terraform's arguments from its input, so tfgate "
                            "cannot tell the subcommand; blocked (fail closed).",
                            words,
                        )
                return ALLOW
        if (
            self.tf_line
            and any(a in _MUTATING_WORDS for a in args)
            and (prog.startswith(("./", "../")) or program_name(prog) in self.arg_names)
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)}`: tfgate does not know the program `{prog}`, and it is given "
                f"`{next(a for a in args if a in _MUTATING_WORDS)}` on a line that mentions Terraform; "
                "blocked (fail closed). Call Terraform by name through `tfgate plan` / `tfgate apply`.",
                words,
            )
        return ALLOW


def check_command(command: str, cwd: str | None = None) -> Decision:
    """Decide whether a shell command line may run (blocks Terraform mutations that bypass tfgate and changes
    to tfgate's own ground); `cwd` is where it runs, when known."""
    try:
        if len(command) > MAX_COMMAND:
            raise ParseError("command too long to analyse")
        decision = _Analyzer(command, cwd).analyze(command, 0)
    except ParseError as exc:
        if not (_TF_WORD.search(command) or _TF_WORD.search(_dequote(command)) or mentions_ground(command)):
            return ALLOW
        decision = _block(
            UNPARSEABLE,
            f"tfgate cannot parse this command line ({exc}) and it mentions Terraform or tfgate's files, so it "
            "is blocked (fail closed). Write it as a plain command; to change infrastructure use `tfgate plan` "
            "and `tfgate apply`.",
            command.strip()[:200],
        )
    mention = None if decision.allowed or decision.code == TAMPER else mentions_ground(_dequote(command))
    if mention:
        # The line also touches tfgate's own ground: the refusal recommends nothing (`mv tfgate.yaml x &&
        # terraform destroy` must not be told "use tfgate destroy").
        first = decision.reason.split(". ", 1)[0].rstrip(".")
        reason = (
            f"{first}. This line also names tfgate's own ground (`{mention}`), which an agent must never change. "
            "Stop here and ask a human."
        )
        return Decision(False, reason, decision.segment, decision.code)
    return decision


def check_write(path: str, cwd: str | None = None, content: str = "") -> Decision:
    """A file tool (Write, Edit, apply_patch ...) writing `path`: blocked when it is tfgate's own ground; what
    it writes into a shell start-up file (`.bashrc`, `.envrc` ...) is judged as the commands it is."""
    what = Ground(cwd).path(path)
    if what is not None:
        return _block(TAMPER, tamper_reason(f"write {path}", path, what), f"write {path}")
    if program_name(path) in STARTUP_FILES and content:
        d = check_command(content, cwd)
        if not d.allowed:
            return Decision(
                False, f"writing {path}, which later shells run: {d.reason}", f"write {path}", d.code
            )
    return ALLOW


def check_argv(argv: Sequence[str]) -> Decision:
    """The generic form: one argument is a shell command line; several are an argv."""
    import shlex

    if len(argv) == 1:
        return check_command(argv[0])
    return check_command(shlex.join(argv))
