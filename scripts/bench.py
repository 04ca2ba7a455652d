"""``make bench``: run every ``scripts/bench_*.py`` and write ``docs/results.md``.

Each benchmark module defines ``run(quick=False) -> str`` returning a
markdown section (tables, links to PNG plots). ``--only`` picks some,
``--quick`` asks each for a shorter run.
"""
import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from scripts.results import provenance, update_section


def benches():
    root = Path(__file__).parent
    return sorted(i.name[len("bench_"):] for i in pkgutil.iter_modules([str(root)])
                  if i.name.startswith("bench_"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--only", nargs="*", help=f"benchmarks to run (of {', '.join(benches())})")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    names = args.only or benches()
    unknown = set(names) - set(benches())
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}")
    failed = []
    for name in names:
        module = importlib.import_module(f"scripts.bench_{name}")
        start = time.time()
        print(f"== bench {name}", flush=True)
        try:
            body = module.run(quick=args.quick)
        except Exception as e:  # one broken benchmark must not hide the others
            failed.append(name)
            body = f"**Benchmark failed:** `{type(e).__name__}: {e}`\n"
            print(f"   failed: {e!r}", file=sys.stderr)
        # The command that regenerates this section alone, and the run it was part of.
        stamp = provenance(f"make bench BENCH={name}", within=None if args.only else "make bench")
        # A benchmark may title its own section; the provenance goes under the title.
        title, _, rest = body.partition("\n") if body.startswith("## ") else (f"## {name}", "", body)
        section = (f"{title}\n\n{stamp}\n{rest.strip()}\n\n"
                   f"_Wall time {time.time() - start:.0f} s._\n")
        update_section(args.out, f"bench-{name}", section)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
