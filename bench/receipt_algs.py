"""The cost of signing a receipt with each algorithm the contract allows for the service's own
keys (ES256, EdDSA): `python -m bench.receipt_algs`.

Slices of 500 signatures alternate between the two, so a neighbour's load moves both alike; the
fastest slice of each is the figure least disturbed by it. Both through the service's own
``tokens.sign`` (pyjwt) and the bare signature (cryptography), on a receipt-sized claim set.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from consent_api.security import tokens

CLAIMS = {"iss": "https://consent.example.com", "sub": "u-000123", "iat": 1764892800, "jti": "rcpt_" + "a" * 26,
          "tenant_id": "t_" + "b" * 20, "events": ["evt_" + "c" * 26], "policy_version": "2026-01",
          "hash": "d" * 64}


def per_call_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.receipt_algs", description=__doc__.split("\n\n")[0])
    p.add_argument("--slices", type=int, default=30)
    p.add_argument("--per-slice", type=int, default=500)
    args = p.parse_args(argv)
    es, ed = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    message = tokens.sign(CLAIMS, es, "sk-1", "ES256").rsplit(".", 1)[0].encode("ascii")
    ecdsa = ec.ECDSA(hashes.SHA256())
    runs: dict[str, Callable[[], object]] = {
        "ES256 tokens.sign": lambda: tokens.sign(CLAIMS, es, "sk-1", "ES256"),
        "EdDSA tokens.sign": lambda: tokens.sign(CLAIMS, ed, "sk-1", "EdDSA"),
        "ES256 signature only": lambda: es.sign(message, ecdsa),
        "EdDSA signature only": lambda: ed.sign(message),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.slices):
        for name, fn in runs.items():
            samples[name].append(per_call_us(fn, args.per_slice))
    for name, values in samples.items():
        print(f"{name:<22} fastest slice {min(values):6.1f} us, median {statistics.median(values):6.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
