"""`k2eval cache`: look into and trim the response cache."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cache", help="the response cache: stats, prune",
        description="Model replies stored by `k2eval run --cache` (a SQLite file by default, or "
                    "a shared PostgreSQL database). Keys cover endpoint, model, messages, tools, "
                    "sampling and the attempt's seed; API keys are never stored.")
    commands = parser.add_subparsers(dest="cache_command", required=True)
    for name, text in (("stats", "entries, hits served and size, per model"),
                       ("prune", "delete entries not used for a while")):
        p = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("--cache", metavar="PATH|URL",
                       help="the cache (default: $K2EVAL_CACHE_DIR/responses.db or "
                            "~/.cache/k2eval/responses.db)")
        if name == "prune":
            p.add_argument("--older-than", required=True, metavar="AGE",
                           help="e.g. 30d, 12h, 90m: entries last used before that are deleted")
        p.set_defaults(func=_stats if name == "stats" else _prune)


def _stats(args: argparse.Namespace) -> int:
    from k2eval.store.cache import ResponseCache

    cache = ResponseCache(args.cache)
    print(f"response cache {cache.describe()}")
    for line in cache.stats().lines():
        print(f"  {line}")
    cache.close()
    return 0


def _prune(args: argparse.Namespace) -> int:
    from k2eval.store.cache import ResponseCache, parse_age

    age = parse_age(args.older_than)
    cache = ResponseCache(args.cache)
    removed = cache.prune(age)
    print(f"removed {removed} entries not used for {args.older_than} from {cache.describe()}")
    cache.close()
    return 0
