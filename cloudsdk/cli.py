"""The ``cloudsdk`` command line. It only parses options and calls the library;
user errors become one-line messages, not tracebacks."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cloudsdk import __version__
from cloudsdk.errors import CloudSDKError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudsdk", description="cloudsdk: a feature store for machine learning")
    parser.add_argument("--version", action="version", version=f"cloudsdk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build and query the football example on the embedded store")
    demo.add_argument("--dir", default=None,
                      help="the store directory (default: $CLOUDSDK_HOME or ~/.cloudsdk)")
    demo.add_argument("--teams", type=int, default=500, help="number of teams (default 500)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cloudsdk`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            from cloudsdk.demo import run_demo

            if args.teams < 20:
                raise SystemExit("cloudsdk demo: --teams must be at least 20")
            result = run_demo(args.dir, n_teams=args.teams, progress=not args.no_progress)
            return 0 if result["same_rows"] else 1
    except CloudSDKError as exc:
        print(f"cloudsdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"cloudsdk {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
