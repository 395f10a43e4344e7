"""GNU statement expressions `({ s1; s2; e; })` → immediately invoked C++ lambdas.

The shared C-family emitters write statement expressions (GCC, Clang and OpenCL compilers accept
them); NVRTC's C++ front end does not, and has no switch for GNU extensions that keeps its own
builtin headers working. A lambda `[&]() { s1; s2; return e; }()` means the same thing in CUDA
C++ (it sees and may change the enclosing variables; NVVM inlines it), so the cuda stage rewrites
the emitted text: a string-, comment- and bracket-aware scan, innermost expressions first.
"""

from __future__ import annotations


def lower_statement_expressions(src: str) -> str:
    """`src` with every `({ ... })` replaced by an immediately invoked lambda."""
    out, i = [], 0
    while True:
        start = _find_open(src, i)
        if start < 0:
            out.append(src[i:])
            return "".join(out)
        end = _matching_brace(src, start + 1)           # index of the `}` closing `({`
        if end < 0 or src[end + 1:end + 2] != ")":
            out.append(src[i:start + 2])                # not a statement expression after all
            i = start + 2
            continue
        out.append(src[i:start])
        out.append(_as_lambda(src[start + 2:end]))
        i = end + 2


def _as_lambda(body: str) -> str:
    """The lambda of one statement expression's body (split before nested ones are rewritten:
    a rewritten `[&]() {...}()` would look like a block statement to the splitter)."""
    head, last = _split_last_statement(body)
    if last is None:
        return f"[&]() {{{lower_statement_expressions(body)}}}()"
    head, last = lower_statement_expressions(head), lower_statement_expressions(last)
    return f"[&]() {{{head} return {last}; }}()"


def _split_last_statement(body: str) -> tuple[str, str | None]:
    """(statements before the value, the value expression) — or (body, None) when the body does
    not end in an expression statement (then the expression has type void)."""
    text = body.rstrip()
    if not text.endswith(";"):
        return body, None
    boundary = -1
    depth = 0
    for k, ch in _code_chars(text[:-1]):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if ch == "}" and depth == 0:
                boundary = k
        elif ch == ";" and depth == 0:
            boundary = k
    last = text[boundary + 1:-1].strip()
    if not last or last.startswith(("if", "for", "while", "do", "switch", "return")):
        return body, None
    return text[:boundary + 1], last


def _find_open(src: str, i: int) -> int:
    for k, ch in _code_chars(src, i):
        if ch == "(" and src[k + 1:k + 2] == "{":
            return k
    return -1


def _matching_brace(src: str, open_at: int) -> int:
    depth = 0
    for k, ch in _code_chars(src, open_at):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _code_chars(src: str, i: int = 0):
    """(index, char) of every character outside string/char literals and comments."""
    n = len(src)
    while i < n:
        ch = src[i]
        if ch in "\"'":
            i = _skip_literal(src, i)
            continue
        if ch == "/" and src[i + 1:i + 2] == "/":
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch == "/" and src[i + 1:i + 2] == "*":
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        yield i, ch
        i += 1


def _skip_literal(src: str, i: int) -> int:
    quote, i = src[i], i + 1
    while i < len(src) and src[i] != quote:
        i += 2 if src[i] == "\\" else 1
    return i + 1
