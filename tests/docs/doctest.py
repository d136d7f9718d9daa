#!/usr/bin/env python3
"""Runs the SQL examples of Markdown files against a PostgreSQL server, through psql.

Every ```sql block runs, in file order, in one fresh database per file, each block through its
own psql (ON_ERROR_STOP: a failing statement fails the block, and the block fails the run).
HTML comments just before a block say what else to do with it:

    <!-- doctest: skip -->            the next ```sql block is not run (say why in the text:
                                      it needs several servers, a path of yours, ...)
    <!-- doctest: fails -->           the next ```sql block must fail (an error example)
    <!-- doctest: output -->          the next fenced block is the exact output of the
                                      previous run block (psql's aligned format; trailing
                                      blanks ignored); after an error example, its messages
                                      as interactive psql prints them
    <!-- doctest: own-images -->      the next ```sh or ```sql block is a step of the own-images
                                      recipe: not run here, but by tests/docs/own_images.sh
                                      (--recipe own-images), in order, on real training data
    <!-- doctest: setup               SQL run at this point, not shown to readers (fixtures
    ...SQL...                         a reader would have made themselves)
    -->

psql runs in the work folder given by --workdir, so client-side files (`\\lo_import
my64.onnx`) resolve there, and the literal prefix /srv/ics/ in a block is replaced by that
folder, which the server can read: examples show the paths a reader would have, the test runs
them on fixtures. A file whose blocks do not create the extension gets it created first.

Usage: doctest.py --port P --workdir DIR [--psql PATH] FILE.md...
       doctest.py --recipe own-images --db DB --user ROLE --repo DIR --port P --workdir DIR FILE.md
Prints one line per block and a tally; exits 1 when any block failed.
"""

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*doctest:\s*(skip|fails|output|setup|own-images)\b(.*)$")
SERVER_DIR = "/srv/ics/"


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    markers: list = field(default_factory=list)
    hidden: bool = False  # a setup comment, not a fenced block


def parse(path):
    """The fenced blocks and setup comments of a Markdown file, with their markers."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, pending, i = [], [], 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        if m:
            kind = m.group(1)
            if kind == "setup":
                start, body = i + 1, []
                rest = m.group(2)
                if "-->" in rest:
                    raise SystemExit(f"{path}:{i + 1}: a setup comment holds its SQL on the lines below it")
                i += 1
                while i < len(lines) and "-->" not in lines[i]:
                    body.append(lines[i])
                    i += 1
                if i == len(lines):
                    raise SystemExit(f"{path}:{start}: unterminated doctest setup comment")
                blocks.append(Block(start, "sql", "\n".join(body) + "\n", ["run"], hidden=True))
            else:
                if "-->" not in m.group(0):
                    raise SystemExit(f"{path}:{i + 1}: a doctest marker is one line: <!-- doctest: {kind} -->")
                pending.append(kind)
            i += 1
            continue
        f = FENCE.match(lines[i])
        if f:
            indent, fence, lang = f.group(1), f.group(2), f.group(3)
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            if i == len(lines):
                raise SystemExit(f"{path}:{start}: unterminated code block")
            blocks.append(Block(start, lang, "\n".join(body) + "\n", pending))
            pending = []
            i += 1
            continue
        if lines[i].strip() and pending:
            raise SystemExit(f"{path}:{i + 1}: doctest marker {pending} is not followed by a code block")
        i += 1
    if pending:
        raise SystemExit(f"{path}: doctest marker {pending} at the end of the file")
    return blocks


def psql(args, db, sql, workdir):
    cmd = [args.psql, "-X", "-h", args.host, "-p", str(args.port), "-U", args.user, "-d", db,
           "-v", "ON_ERROR_STOP=1", "-P", "pager=off", "-q", "-f", "-"]
    return subprocess.run(cmd, input=sql.replace(SERVER_DIR, workdir.rstrip("/") + "/"),
                          capture_output=True, text=True, cwd=workdir)


def norm(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def run_file(args, path, index):
    blocks = parse(path)
    db = f"doctest_{index}"
    admin = "postgres"
    r = psql(args, admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE);\nCREATE DATABASE {db};\n", args.workdir)
    if r.returncode != 0:
        raise SystemExit(f"cannot create database {db}: {r.stderr}")
    runnable = [b for b in blocks if b.lang == "sql" and not {"skip", "own-images"} & set(b.markers)]
    if not any(re.search(r"create\s+extension\s+(if\s+not\s+exists\s+)?ics_hash", b.text, re.I) for b in runnable):
        r = psql(args, db, "CREATE EXTENSION ics_hash;\n", args.workdir)
        if r.returncode != 0:
            raise SystemExit(f"CREATE EXTENSION failed in {db}: {r.stderr}")
    passed = failed = skipped = 0
    last = None  # (block, result) of the previous run block, for an output block
    for b in blocks:
        where = f"{path}:{b.line}"
        if "output" in b.markers:
            if last is None:
                print(f"not ok {where}: an output block with no run block before it")
                failed += 1
                continue
            # psql names its script before each message; interactive psql does not.
            got = norm(last[1].stdout if last[1].returncode == 0
                       else re.sub(r"(?m)^psql:<stdin>:\d+: ", "", last[1].stderr))
            if got == norm(b.text):
                print(f"ok {where} output of the block at line {last[0].line}")
                passed += 1
            else:
                print(f"not ok {where} output of the block at line {last[0].line} differs:")
                print("  expected:\n    " + norm(b.text).replace("\n", "\n    "))
                print("  got:\n    " + got.replace("\n", "\n    "))
                failed += 1
            continue
        if b.lang != "sql":
            continue
        if "skip" in b.markers or "own-images" in b.markers:
            skipped += 1
            continue
        r = psql(args, db, b.text, args.workdir)
        last = (b, r)
        expect_fail = "fails" in b.markers
        kind = "setup" if b.hidden else ("error example" if expect_fail else "block")
        if (r.returncode != 0) == expect_fail:
            print(f"ok {where} {kind}")
            passed += 1
        else:
            failed += 1
            why = "ran without an error" if expect_fail else "failed"
            print(f"not ok {where} {kind} {why}:")
            print("    " + (r.stderr or r.stdout).strip().replace("\n", "\n    "))
    if not args.keep:
        psql(args, admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE);\n", args.workdir)
    return passed, failed, skipped


def run_recipe(args, name):
    """Runs the blocks marked `doctest: NAME` of the files in order: ```sh through bash (set -euo
    pipefail), ```sql through psql into --db; /path/to/ics_hash means --repo."""
    steps = [(path, b) for path in args.files for b in parse(path) if name in b.markers]
    if not steps:
        print(f"not ok no block is marked 'doctest: {name}' in {' '.join(args.files)}")
        return 1
    for path, b in steps:
        text = b.text.replace("/path/to/ics_hash", args.repo)
        if b.lang == "sh":
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=args.workdir,
                               capture_output=True, text=True)
        elif b.lang == "sql":
            r = psql(args, args.db, text, args.workdir)
        else:
            print(f"not ok {path}:{b.line} a {b.lang or 'plain'} block marked {name}: only sh and sql run")
            return 1
        if r.returncode != 0:
            print(f"not ok {path}:{b.line} {b.lang} step failed:")
            print("    " + (r.stderr[-4000:] or r.stdout[-4000:]).strip().replace("\n", "\n    "))
            return 1
        print(f"ok {path}:{b.line} {b.lang} step")
        if r.stdout.strip():
            print("    " + r.stdout.strip().replace("\n", "\n    "))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--user", default="postgres")
    p.add_argument("--psql", default="psql")
    p.add_argument("--workdir", required=True)
    p.add_argument("--keep", action="store_true", help="keep the databases")
    p.add_argument("--parse-only", action="store_true", help="list the blocks, run nothing")
    p.add_argument("--recipe", help="run the blocks marked `doctest: RECIPE` instead")
    p.add_argument("--db", help="database of a recipe's SQL steps")
    p.add_argument("--repo", default=".", help="what /path/to/ics_hash means in a recipe")
    p.add_argument("files", nargs="+")
    args = p.parse_args()
    if args.parse_only:
        for path in args.files:
            for b in parse(path):
                if b.lang == "sql" or b.markers:
                    print(f"{path}:{b.line} {b.lang} {','.join(b.markers) or 'run'}")
        return 0
    if args.recipe:
        return run_recipe(args, args.recipe)
    passed = failed = skipped = 0
    for index, path in enumerate(args.files):
        p_, f_, s_ = run_file(args, path, index)
        passed, failed, skipped = passed + p_, failed + f_, skipped + s_
    print(f"doc tests: {passed} passed, {failed} failed, {skipped} not run here (doctest: skip, own-images)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
