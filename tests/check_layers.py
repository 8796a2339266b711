#!/usr/bin/env python3
"""check_layers.py [ROOT]: fails when a unit of runtime/ uses a unit above it.

The units of gdlua's runtime, lowest first. A unit may use (call, read,
include) the units of lower layers and of its own layer, never one above:
the master announces events (gdl_master_on) and the units above it listen,
registered by gdl_main.c. This list is the one place the layer order is
written; the layout table of docs/DEVELOPING.md follows it.

A unit is a .c file under runtime/ (with its own header, if any). What a
unit defines is read off its source: every function or variable named
gdl_* at the start of a line that is not static or extern. What it uses is
every gdl_* name in its code (comments and strings left out) that another
unit defines, and every header of another unit it includes. Exit status 1
and one line per use that goes upward; 0 and a summary otherwise.
"""
import os
import re
import sys

LAYERS = [
    ("base", "util log roff servers proctitle sockbuf assets embedded http_parse listen"),
    ("configuration", "options"),
    ("shared memory", "slot attempts"),
    ("policy", "policy"),
    ("Lua and its C modules", "lua sched mod_core mod_job mod_client mod_http mod_tcp mod_fib mod_image png jpeg gif"),
    ("a child", "child"),
    ("loaders", "loader"),
    ("job servers", "upstream observer sentinel"),
    ("the master's processes", "procs watchdog"),
    ("the master's generations of the code", "generations"),
    ("the master: its loop, signals, scaling and events", "master"),
    ("services that listen to the master", "console http metrics notify daemon"),
    ("the command", "main"),
]

LEVEL = {u: i for i, (_, units) in enumerate(LAYERS) for u in units.split()}

DEF_FUNC = re.compile(r"^(?!static\b|extern\b|typedef\b)[A-Za-z_][\w \t\*]*?\b(gdl_\w+)\s*\([^;]*$")
DEF_VAR = re.compile(r"^(?!static\b|extern\b|typedef\b)[A-Za-z_][\w \t\*]*?\b(gdl_\w+)\s*(\[[^\]]*\])*\s*(=|;)")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
NAME = re.compile(r"\bgdl_\w+\b")
COMMENT_OR_STRING = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def unit_of(path):
    base = os.path.basename(path)
    return re.sub(r"^gdl_|\.[ch]$", "", base)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    runtime = os.path.join(root, "runtime")
    sources = {}
    for d in (runtime, os.path.join(runtime, "modules")):
        for f in sorted(os.listdir(d)):
            if f.startswith("gdl_") and f.endswith(".c"):
                sources[unit_of(f)] = os.path.join(d, f)
    unknown = sorted(set(sources) - set(LEVEL))
    if unknown:
        print("check_layers: no layer for unit(s) %s: add them to LAYERS in %s" % (", ".join(unknown), __file__))
        return 1

    defined_by = {}
    code = {}
    for unit, path in sources.items():
        text = open(path, encoding="utf-8").read()
        code[unit] = COMMENT_OR_STRING.sub(" ", text)
        for line in code[unit].splitlines():
            m = DEF_FUNC.match(line) or DEF_VAR.match(line)
            if m:
                defined_by.setdefault(m.group(1), unit)
    # The generated tables (gdl_assets.c, gdl_embedded.c) have no source here.
    defined_by.setdefault("gdl_assets", "assets")
    defined_by.setdefault("gdl_embedded", "embedded")

    bad = []
    uses = 0
    for unit, text in sorted(code.items()):
        used = {}
        for name in set(NAME.findall(text)):
            owner = defined_by.get(name)
            if owner and owner != unit:
                used.setdefault(owner, []).append(name)
        for header in INCLUDE.findall(open(sources[unit], encoding="utf-8").read()):
            owner = unit_of(header)
            if header.startswith("gdl_") and owner != unit and owner in LEVEL:
                used.setdefault(owner, []).append('#include "%s"' % header)
        for owner, names in sorted(used.items()):
            uses += 1
            if LEVEL[owner] > LEVEL[unit]:
                bad.append(
                    "%s (%s) uses %s (%s), a higher layer: %s"
                    % (
                        os.path.relpath(sources[unit], root),
                        LAYERS[LEVEL[unit]][0],
                        owner,
                        LAYERS[LEVEL[owner]][0],
                        ", ".join(sorted(names)),
                    )
                )
    for line in bad:
        print("check_layers: " + line)
    if bad:
        print("check_layers: %d upward use(s); the layers are listed in %s" % (len(bad), os.path.relpath(__file__, root)))
        return 1
    print("check_layers: %d units, %d uses between them, none upward" % (len(code), uses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
