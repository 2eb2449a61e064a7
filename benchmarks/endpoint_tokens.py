"""How the `auto` token rule was chosen (issue 18): false positives on real route words, and
how many generated ids of each common format it finds, for candidate rules.

Usage: python -m benchmarks.endpoint_tokens --segments FILE [--per-format 20000]

FILE holds literal path segments of real APIs, one a line (the segments that are not
parameters). The published figures used the REST routes of every AWS service (botocore's
service models, `http.requestUri`) and of every Google API (google-api-python-client's
discovery documents, `path` and `flatPath`): 28,349 routes, 7,225 literal segments. To make
it (in a scratch virtualenv, not epstats's):

    pip install botocore google-api-python-client
    python -m benchmarks.endpoint_tokens --extract > segments.txt

The candidates are evaluated in Python; tests/endpoint_oracle.py holds the rule kept, and
tests/test_endpoints.py checks that the server's SQL applies exactly that rule.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import secrets
import string
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT  # noqa: F401  (puts the checkout on sys.path)
from tests import endpoint_oracle as oracle

B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE36 = string.ascii_lowercase + string.digits


def _formats(rnd: random.Random) -> dict[str, Callable[[], str]]:
    def pick(alphabet: str, n: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(n))

    def b64(nbytes: int) -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode()

    return {
        "ULID": lambda: pick(CROCKFORD, 26),
        "KSUID": lambda: pick(B62, 27),
        "nanoid": lambda: pick(B64URL, 21),
        "cus_+14": lambda: "cus_" + pick(B62, 14),
        "pi_+24": lambda: "pi_" + pick(B62, 24),
        "firebase": lambda: "-" + pick(B64URL, 19),
        "b64url16B": lambda: b64(16),
        "b64url32B": lambda: b64(32),
        "base62_22": lambda: pick(B62, 22),
        "rec+14": lambda: "rec" + pick(B62, 14),
        "cuid": lambda: "c" + pick(BASE36, 24),
        "base62_16": lambda: pick(B62, 16),
    }


def _candidates() -> dict[str, Callable[[str], bool]]:
    def base(s: str, n: int) -> bool:
        return (
            len(s) >= n
            and set(s) <= oracle.TOKEN_CHARS
            and bool(set(s) & oracle.DIGITS)
            and bool(set(s) & oracle.LETTERS)
        )

    def digits_twice(n: int) -> Callable[[str], bool]:
        return lambda s: base(s, n) and oracle.letter_digit_pairs(s) >= 2

    def kept(n: int) -> Callable[[str], bool]:
        return lambda s: (
            base(s, n)
            and (oracle.letter_digit_pairs(s) >= 2 or oracle.longest_lowercase_run(s) <= 5)
        )

    def plain(n: int) -> Callable[[str], bool]:
        return lambda s: base(s, n)

    out: dict[str, Callable[[str], bool]] = {}
    for n in (12, 16, 20):
        out[f"{n}+ chars, digit and letter"] = plain(n)
        out[f"{n}+, letter-digit x2"] = digits_twice(n)
        out[f"{n}+, x2 or lowercase runs <= 5 (kept at 16)"] = kept(n)
    out["the rule kept (oracle)"] = oracle.is_token
    return out


def extract() -> Iterator[str]:
    """Literal segments of the AWS and Google API routes (needs botocore and
    google-api-python-client installed)."""
    import botocore  # type: ignore[import-not-found]
    import googleapiclient  # type: ignore[import-not-found]

    paths: set[str] = set()
    for service in (Path(botocore.__file__).parent / "data").iterdir():
        versions = sorted(p for p in service.iterdir() if p.is_dir()) if service.is_dir() else []
        if not versions:
            continue
        plain, packed = versions[-1] / "service-2.json", versions[-1] / "service-2.json.gz"
        if plain.exists():
            model = json.loads(plain.read_text())
        elif packed.exists():
            with gzip.open(packed) as packed_file:
                model = json.loads(packed_file.read())
        else:
            continue
        for op in model.get("operations", {}).values():
            uri = op.get("http", {}).get("requestUri")
            if uri:
                paths.add(uri.split("?")[0])

    def walk(doc: dict[str, Any]) -> None:
        for method in doc.get("methods", {}).values():
            for key in ("flatPath", "path"):
                if key in method:
                    paths.add("/" + str(method[key]).lstrip("/"))
        for resource in doc.get("resources", {}).values():
            walk(resource)

    documents = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    for f in documents.glob("*.json"):
        walk(json.loads(f.read_text()))
    print(f"{len(paths):,} routes", file=sys.stderr)
    yield from sorted({s for p in paths for s in p.split("/") if s and "{" not in s})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", help="literal segments, one a line")
    parser.add_argument("--per-format", type=int, default=20000)
    parser.add_argument("--extract", action="store_true", help="print the segments (see above)")
    args = parser.parse_args()
    if args.extract:
        for segment in extract():
            print(segment)
        return
    if not args.segments:
        parser.error("--segments FILE (or --extract to make one)")
    words = [s for s in Path(args.segments).read_text().splitlines() if s]
    rnd = random.Random(7)
    samples = {
        name: [make() for _ in range(args.per_format)] for name, make in _formats(rnd).items()
    }
    print(f"{len(words):,} literal segments; {args.per_format:,} ids per format")
    print(f"{'rule':44} {'false+':>6} " + " ".join(f"{k[:9]:>9}" for k in samples))
    for name, rule in _candidates().items():
        wrong = [w for w in words if rule(w)]
        found = [100 * sum(map(rule, ids)) / len(ids) for ids in samples.values()]
        print(f"{name:44} {len(wrong):6d} " + " ".join(f"{f:8.1f}%" for f in found))
        if wrong:
            print(f"{'':44} e.g. {', '.join(wrong[:4])}")


if __name__ == "__main__":
    main()
