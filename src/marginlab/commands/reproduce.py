"""``marginlab reproduce PAPER --scale ci|cpu|full``."""

from __future__ import annotations

import argparse


def _reproduce(args: argparse.Namespace) -> int:
    from marginlab.experiments.claims import FAIL, read_claims
    from marginlab.experiments.reproduce import claim_specs, claims_table, reproduce, specs_list

    if args.list:
        print(specs_list(claim_specs(args.paper)))
        return 0
    out = reproduce(
        args.paper, args.scale, args.out, data_dir=args.data_dir, verbose=not args.quiet
    )
    claims = read_claims(out / "claims.json")
    print(claims_table(claims))
    print(f"claims: {out / 'claims.json'}\nreport: {out / 'claims.html'}")
    return 1 if any(c.verdict == FAIL for c in claims) else 0


def register(sub: argparse._SubParsersAction) -> None:
    from marginlab.experiments.claims import SCALES
    from marginlab.experiments.reproduce import PAPERS

    parser = sub.add_parser(
        "reproduce",
        help="re-measure a paper's claims and write claims.json and an HTML report",
        description="Run a paper's experiments at a scale and check each of its claims: "
        "PASS, FAIL or NOT RUN (with the reason). Exits 1 when a claim fails. Running it "
        "again on the same --out judges the saved runs and measurements again.",
    )
    parser.add_argument(
        "paper", nargs="?", default="all", choices=[*PAPERS, "all"], help="default: all"
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print every claim (statement, source, criterion, tolerance, scales) and exit",
    )
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="ci",
        help="ci: minutes on 2 CPU cores; cpu: about an hour; full: the paper's own scale",
    )
    parser.add_argument("--out", help="output folder (default reproduce/<paper>-<scale>)")
    parser.add_argument("--data-dir", help="where MNIST/CIFAR live (default $MARGINLAB_DATA)")
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    parser.set_defaults(func=_reproduce)
