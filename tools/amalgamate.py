#!/usr/bin/env python3
"""Generates single_include/logitkit/logitkit.hpp, logitkit as one header.

Starting from include/logitkit/logitkit.hpp, every project header pulled in with
`#include "..."` is inlined where it is first included, once, so each header comes after the
headers it depends on, exactly as the preprocessor would read them. `#pragma once` lines of the
inlined files are dropped; system includes (`#include <...>`) stay where they are, so the
conditional xsimd include keeps working. A project header that is included under different
preprocessor conditions in different places cannot be inlined once safely and is an error.

    python3 tools/amalgamate.py                  # writes single_include/logitkit/logitkit.hpp
    python3 tools/amalgamate.py --output FILE    # writes FILE instead
    python3 tools/amalgamate.py --check          # exit 1 if the committed file is out of date

Only the Python standard library is used.
"""

import argparse
import difflib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE_DIR = os.path.join(ROOT, "include")
ENTRY = os.path.join("logitkit", "logitkit.hpp")
DEFAULT_OUTPUT = os.path.join(ROOT, "single_include", "logitkit", "logitkit.hpp")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\b")
IF_RE = re.compile(r"^\s*#\s*(if|ifdef|ifndef)\b")
ELSE_RE = re.compile(r"^\s*#\s*(else|elif)\b")
ENDIF_RE = re.compile(r"^\s*#\s*endif\b")
VERSION_RE = re.compile(r'^\s*#\s*define\s+LOGITKIT_VERSION_STRING\s+"([^"]+)"', re.M)


class AmalgamateError(Exception):
    pass


def rel(path):
    return os.path.relpath(path, INCLUDE_DIR).replace(os.sep, "/")


class Amalgamator:
    def __init__(self):
        self.done = {}  # header path -> condition context of its first inclusion
        self.stack = []  # headers being inlined (cycle detection)
        self.out = []

    def inline(self, path, context):
        self.stack.append(path)
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        conds = []  # this file's open conditional directives
        self.out.append("// ---- begin %s ----" % rel(path))
        for number, line in enumerate(lines, 1):
            if PRAGMA_ONCE_RE.match(line):
                continue
            if IF_RE.match(line):
                conds.append(line.strip())
            elif ELSE_RE.match(line):
                if not conds:
                    raise AmalgamateError("%s:%d: #else/#elif without #if" % (rel(path), number))
                conds[-1] = conds[-1] + " / " + line.strip()
            elif ENDIF_RE.match(line):
                if not conds:
                    raise AmalgamateError("%s:%d: #endif without #if" % (rel(path), number))
                conds.pop()
            m = INCLUDE_RE.match(line)
            if not m:
                self.out.append(line)
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
            if not os.path.isfile(target):
                target = os.path.normpath(os.path.join(INCLUDE_DIR, m.group(1)))
            if not os.path.isfile(target):
                raise AmalgamateError('%s:%d: cannot find "%s"' % (rel(path), number, m.group(1)))
            if os.path.commonpath([target, INCLUDE_DIR]) != INCLUDE_DIR:
                raise AmalgamateError('%s:%d: "%s" is outside include/' % (rel(path), number, m.group(1)))
            here = context + tuple("%s (%s)" % (c, rel(path)) for c in conds)
            if target in self.stack:
                raise AmalgamateError("%s:%d: circular include of %s" % (rel(path), number, rel(target)))
            if target in self.done:
                first = self.done[target]
                # Already inlined: fine when the first inclusion was under the same conditions as
                # this one, or under fewer (a prefix of them), since it then ran whenever this does.
                if here[: len(first)] != first:
                    raise AmalgamateError(
                        "%s:%d: %s was first included under the conditions %s and is included here "
                        "under %s; it cannot be inlined once" % (rel(path), number, rel(target), list(first), list(here)))
                self.out.append("// %s (already included above)" % line.strip())
                continue
            self.done[target] = here
            self.inline(target, here)
        if conds:
            raise AmalgamateError("%s: unterminated conditional %s" % (rel(path), conds[-1]))
        self.out.append("// ---- end %s ----" % rel(path))
        self.stack.pop()


def generate():
    entry = os.path.join(INCLUDE_DIR, ENTRY)
    with open(os.path.join(INCLUDE_DIR, "logitkit", "version.hpp"), encoding="utf-8") as f:
        m = VERSION_RE.search(f.read())
    version = m.group(1) if m else "unknown"
    a = Amalgamator()
    a.done[entry] = ()
    a.inline(entry, ())
    header = [
        "// logitkit %s: the whole library in one header." % version,
        "// SPDX-License-Identifier: MIT (see LICENSE in the logitkit repository)",
        "//",
        "// Generated by tools/amalgamate.py from include/%s and the headers it" % ENTRY.replace(os.sep, "/"),
        "// includes; do not edit. Regenerate with: python3 tools/amalgamate.py",
        "//",
        "// Usage: put single_include/ on the include path and #include <logitkit/logitkit.hpp>.",
        "// When <xsimd/xsimd.hpp> is on the include path too, the SIMD path is chosen from the",
        "// target flags as with the multi-header library; otherwise the scalar path is used.",
        "#pragma once",
        "",
        "#define LOGITKIT_SINGLE_HEADER 1",
        "",
    ]
    text = "\n".join(header + a.out) + "\n"
    # Public headers that logitkit.hpp does not include are not in the single header.
    public = sorted(
        os.path.join(INCLUDE_DIR, "logitkit", n)
        for n in os.listdir(os.path.join(INCLUDE_DIR, "logitkit"))
        if n.endswith(".hpp")
    )
    missing = [rel(p) for p in public if p not in a.done]
    return text, missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="file to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="compare with --output instead of writing it; exit 1 when they differ")
    args = parser.parse_args()
    try:
        text, missing = generate()
    except AmalgamateError as e:
        print("amalgamate.py: error: %s" % e, file=sys.stderr)
        return 2
    for m in missing:
        print("amalgamate.py: note: include/%s is not included by include/%s, so it is not in the "
              "single header" % (m, ENTRY.replace(os.sep, "/")), file=sys.stderr)
    if args.check:
        try:
            with open(args.output, encoding="utf-8", newline="") as f:
                current = f.read()
        except OSError as e:
            print("amalgamate.py: %s is missing (%s); run: python3 tools/amalgamate.py" % (args.output, e),
                  file=sys.stderr)
            return 1
        if current == text:
            print("amalgamate.py: %s is up to date" % args.output)
            return 0
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "committed", "regenerated",
                                         n=1, lineterm=""))
        print("amalgamate.py: %s is out of date with include/; run: python3 tools/amalgamate.py" % args.output,
              file=sys.stderr)
        for line in diff[:60]:
            print(line, file=sys.stderr)
        if len(diff) > 60:
            print("... (%d more diff lines)" % (len(diff) - 60), file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("amalgamate.py: wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
