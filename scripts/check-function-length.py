#!/usr/bin/env python3
"""Lists every C++ function longer than a limit (default 80 lines), longest first.

usage: check-function-length.py [--max N] [PATH...]   (default PATH: lib/ and apps/ of this checkout)

A function's length runs from the first line of its signature to its closing brace, blank and
comment lines included. Lambdas and local classes count toward the function they sit in. Exits
1 when some function is too long, 0 when none is, 2 on bad usage.

The scan matches braces after blanking comments, string and character literals (raw strings
too), preprocessor lines and the #else branches of conditionals, so a brace in a literal or in
two branches of an #if never unbalances it.
"""
import argparse
import pathlib
import re
import sys

SOURCE_SUFFIXES = {".h", ".hpp", ".cc", ".cpp", ".cxx"}


def blank(text, start, end):
    """`text[start:end]` with everything except newlines turned into spaces."""
    return "".join(c if c == "\n" else " " for c in text[start:end])


def first_branches_only(text):
    """The text with the #else/#elif branches of conditionals blanked: each branch may open a brace
    that the code after #endif closes, so only one branch can be scanned."""
    lines = text.split("\n")
    open_conditionals = []  # per open #if: True once its first branch has ended
    for number, line in enumerate(lines):
        directive = re.match(r"\s*#\s*(\w+)", line)
        keyword = directive.group(1) if directive else ""
        if keyword in ("if", "ifdef", "ifndef"):
            open_conditionals.append(False)
        elif keyword in ("else", "elif") and open_conditionals:
            open_conditionals[-1] = True
        elif keyword == "endif" and open_conditionals:
            open_conditionals.pop()
        elif any(open_conditionals):
            lines[number] = ""
    return "\n".join(lines)


def strip_literals(text):
    """The text with comments, literals and preprocessor lines blanked; lines keep their numbers."""
    text = first_branches_only(text)
    out = []
    i, n = 0, len(text)
    line_start = True  # only whitespace since the last newline: a '#' here starts a directive
    while i < n:
        c = text[i]
        if line_start and c == "#":
            j = i
            while j < n and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text, i, min(j, n)))
            i = j
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == '"' and re.search(r"(?:\b|^)(?:u8|u|U|L)?R$", text[max(0, i - 3):i]):
            delimiter = re.match(r'"([^(\s]*)\(', text[i:])
            close = ")" + (delimiter.group(1) if delimiter else "") + '"'
            j = text.find(close, i + 1)
            j = n if j < 0 else j + len(close)
        elif c == '"' or (c == "'" and not is_digit_separator(text, i)):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            out.append(c)
            if c == "\n":
                line_start = True
            elif not c.isspace():
                line_start = False
            i += 1
            continue
        out.append(blank(text, i, j))
        line_start = False
        i = j
    return "".join(out)


def is_digit_separator(text, i):
    """True for the ' in 1'000'000: the token it continues starts with a digit."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_'."):
        j -= 1
    return j < i and text[j].isdigit()


FUNCTION_TAIL = re.compile(
    r"\)(?:\s*(?:const|volatile|noexcept(?:\s*\([^()]*\))?|override|final|mutable|&&|&|"
    r"->\s*[\w:<>,\s*&]+?))*\s*$")
SCOPE_KEYWORD = re.compile(r"^(?:template\s*<.*>\s*)?(?:namespace|class|struct|union|enum)\b|^extern\s*$", re.S)
ACCESS_LABEL = re.compile(r"^\s*(?:public|protected|private)\s*:(?!:)")
CONSTRUCTOR_INIT = re.compile(r"\)\s*(?:noexcept\s*)?:(?!:)")
NAME = re.compile(r"(operator\s*\(\s*\)|operator\s*[^\s(]+|~?[A-Za-z_][\w:<>~]*)\s*\(")


def is_function_header(header):
    """A header that opens a function body (or a lambda's at namespace scope), not a scope or data."""
    if not header or SCOPE_KEYWORD.search(header):
        return False
    before_parameters = re.sub(r"operator\s*\S+", "", header.split("(")[0])
    if "[" in before_parameters:
        return True  # a lambda
    if "=" in before_parameters:
        return False  # an initializer: `const Table kTable = {`
    return bool(FUNCTION_TAIL.search(header) or CONSTRUCTOR_INIT.search(header))


def function_name(header):
    if "[" in header.split("(")[0]:
        return "lambda"
    match = NAME.search(header)
    return match.group(1).strip() if match else "?"


def long_functions(path, limit):
    """(length, line, name) for each function of `path` longer than `limit` lines."""
    text = strip_literals(path.read_text(encoding="utf-8", errors="replace"))
    found = []
    # Each open brace: ("scope" | "function" | "block" | "init", line of its function's header).
    stack = []
    header_start = 0
    for i, c in enumerate(text):
        inside_function = any(kind in ("function", "block") for kind, _ in stack)
        if c == "{":
            if inside_function:
                stack.append(("block", None))
                continue
            header = ACCESS_LABEL.sub("", text[header_start:i]).strip()
            in_init_list = CONSTRUCTOR_INIT.search(header) and re.search(r"[\w>]\s*$", header)
            if in_init_list:  # a member's brace initializer: `x_{value}` in a constructor's list
                stack.append(("init", None))
                continue
            if is_function_header(header):
                offset = header_start + len(text[header_start:i]) - len(text[header_start:i].lstrip())
                offset += len(ACCESS_LABEL.match(text[offset:i]).group(0)) if ACCESS_LABEL.match(text[offset:i]) else 0
                while text[offset].isspace():
                    offset += 1
                stack.append(("function", (text.count("\n", 0, offset) + 1, function_name(header))))
            else:
                stack.append(("scope", None))
                header_start = i + 1
        elif c == "}":
            if not stack:
                continue  # unbalanced (a macro trick): ignore rather than crash
            kind, info = stack.pop()
            if kind == "function":
                first, name = info
                length = text.count("\n", 0, i) + 1 - first + 1
                if length > limit:
                    found.append((length, first, name))
            if kind in ("function", "scope"):
                header_start = i + 1
        elif c == ";" and not inside_function and not (stack and stack[-1][0] == "init"):
            header_start = i + 1
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=80, help="longest allowed function, in lines (default 80)")
    parser.add_argument("paths", nargs="*", help="files or directories to scan (default: lib/ and apps/)")
    args = parser.parse_args()
    if args.max < 1:
        parser.error(f"--max {args.max}: expected a number of lines >= 1")
    checkout = pathlib.Path(__file__).resolve().parent.parent
    roots = [pathlib.Path(p) for p in args.paths] or [checkout / "lib", checkout / "apps"]
    for root in roots:
        if not root.exists():
            parser.error(f"{root}: no such file or directory")
    files = sorted({f for root in roots for f in ([root] if root.is_file() else root.rglob("*"))
                    if f.is_file() and f.suffix in SOURCE_SUFFIXES})
    report = [(length, f, line, name) for f in files for length, line, name in long_functions(f, args.max)]
    report.sort(key=lambda entry: (-entry[0], str(entry[1]), entry[2]))
    for length, f, line, name in report:
        print(f"{f}:{line}: {name}: {length} lines")
    if report:
        print(f"check-function-length: {len(report)} function(s) longer than {args.max} lines", file=sys.stderr)
        return 1
    print(f"check-function-length: no function longer than {args.max} lines in {len(files)} file(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
