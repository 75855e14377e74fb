"""`python -m tools.render_all`: every language × type of the built-in template set and of
each set folder given, rendered into a folder and, with --check, run through the validators
(`make check-generated`). Apart from tools/render.py because the set check renders through
it: the command sits above both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.render import template_set_of, write_files


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.render_all --all OUTDIR [--set DIR ...] [--check]`: render every
    language × type of the built-in set and of each set folder into OUTDIR; with --check, run
    the validators on each and refuse a set that fails them."""
    from tools.template_sets import TemplateSetError, load_dir
    from tools.template_sets.check import check_set, set_services

    parser = argparse.ArgumentParser(prog="python -m tools.render_all", description=main.__doc__)
    parser.add_argument("--all", dest="outdir", type=Path, required=True, metavar="OUTDIR")
    parser.add_argument("--set", dest="sets", type=Path, action="append", default=[])
    parser.add_argument("--check", action="store_true", help="run the validators on each set")
    args = parser.parse_args(argv)
    status = 0
    try:
        tsets = [template_set_of(None)] + [load_dir(path) for path in args.sets]
    except TemplateSetError as exc:
        print(exc, file=sys.stderr)
        return 1
    for tset in tsets:
        try:
            if args.check:
                check_set(tset)
            services = set_services(tset)
        except TemplateSetError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        for files in services.values():
            write_files(files, args.outdir)
        checked = " and passed the validators" if args.check else ""
        print(f"{tset.label}: rendered {len(services)} services into {args.outdir}{checked}")
    return status


if __name__ == "__main__":
    sys.exit(main())
