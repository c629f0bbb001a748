#!/usr/bin/env python3
"""Self cost per function, or per source line of the functions matching a pattern, from a
callgrind dump (e.g. one kept by `KEEP_DUMPS=DIR bash bench/callgrind_per_request.sh`),
divided by the number of requests the dump covers.

  bench/callgrind_costs.py DUMP REQUESTS [TOP]               functions by self cost
  bench/callgrind_costs.py DUMP REQUESTS [TOP] --lines PAT   lines of functions whose name contains PAT
  bench/callgrind_costs.py DUMP_A REQUESTS [TOP] --diff DUMP_B   self cost A - B per function

callgrind_annotate gives inclusive costs and per-file listings; these three views are what
comparing two builds of the request path needed (docs/PERFORMANCE.md, session 15).
"""
import collections
import re
import sys


def parse(path, pattern=None):
    """(self cost per function, self cost per (file, line) of functions matching pattern)"""
    names, files = {}, {}
    per_fn, per_line = collections.Counter(), collections.Counter()
    fn = cur_file = None
    line = 0
    skip = False

    def resolve(table, text):
        m = re.match(r'\((\d+)\)(?:\s+(.*))?', text)
        if not m:
            return text
        if m.group(2):
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), m.group(1))

    for raw in open(path, errors='replace'):
        raw = raw.rstrip('\n')
        if raw.startswith('fn='):
            fn = resolve(names, raw[3:])
        elif raw.startswith('fl='):
            cur_file = resolve(files, raw[3:])
        elif raw.startswith(('fi=', 'fe=')):
            cur_file = resolve(files, raw[3:])
        elif raw.startswith('cfn='):
            resolve(names, raw[4:])
        elif raw.startswith(('cfi=', 'cfl=')):
            resolve(files, raw[4:])
        elif raw.startswith('calls='):
            skip = True  # the next cost line is the call's inclusive cost
        elif raw and (raw[0].isdigit() or raw[0] in '+-*'):
            parts = raw.split()
            pos = parts[0]
            if pos[0] == '+':
                line += int(pos[1:])
            elif pos[0] == '-':
                line -= int(pos[1:])
            elif pos != '*':
                line = int(pos)
            if skip:
                skip = False
                continue
            if fn is None or len(parts) < 2:
                continue
            per_fn[fn] += int(parts[1])
            if pattern and pattern in fn:
                per_line[((cur_file or '?').split('/')[-1], line)] += int(parts[1])
    return per_fn, per_line


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    pattern = diff = None
    if '--lines' in args:
        i = args.index('--lines')
        pattern = args[i + 1]
        del args[i:i + 2]
    if '--diff' in args:
        i = args.index('--diff')
        diff = args[i + 1]
        del args[i:i + 2]
    dump, requests = args[0], float(args[1])
    top = int(args[2]) if len(args) > 2 else 40
    per_fn, per_line = parse(dump, pattern)
    if pattern:
        for (f, ln), c in per_line.most_common(top):
            print(f"{c / requests:9.1f}  {f}:{ln}")
        return
    if diff:
        other, _ = parse(diff)
        rows = sorted(((per_fn[k] - other[k], k) for k in set(per_fn) | set(other)), key=lambda r: -abs(r[0]))
        print(f"total {sum(per_fn.values()) / requests:.0f} - {sum(other.values()) / requests:.0f} per request")
        for d, k in rows[:top]:
            print(f"{d / requests:9.0f} {per_fn[k] / requests:8.0f} {other[k] / requests:8.0f}  {k[:150]}")
        return
    print(f"total {sum(per_fn.values()) / requests:.0f} per request")
    for k, c in per_fn.most_common(top):
        print(f"{c / requests:9.0f}  {k[:150]}")


if __name__ == '__main__':
    main()
