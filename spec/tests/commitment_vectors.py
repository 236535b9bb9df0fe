#!/usr/bin/env python3
"""Recomputes the record commitments of spec/tests/vectors/commitments.json with Python's hashlib,
independently of sealtrail's Rust code, and exits non-zero on any mismatch.

The commitment (spec/docs/leaf-envelope.md, "The commitment") is

    SHA-256( b"sealtrail/record/v1" || 0x00 || salt (32 bytes)
             || len(principal UTF-8) as u64 big-endian || principal UTF-8
             || len(payload) as u64 big-endian || payload )

Usage:
    python3 spec/tests/commitment_vectors.py [FILE]          check FILE (default: the vectors)
    python3 spec/tests/commitment_vectors.py --write [FILE]  fill in every "commitment" of FILE

The vectors were made once with --write and are checked ever since; spec/tests/commitments.rs
runs this script and checks the Rust implementation against the same file. Standard library only.
"""

import hashlib
import json
import os
import sys

DOMAIN = b"sealtrail/record/v1"
DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors", "commitments.json")


def commitment(salt: bytes, principal: str, payload: bytes) -> bytes:
    if len(salt) != 32:
        raise ValueError("the salt must be 32 bytes, not %d" % len(salt))
    p = principal.encode("utf-8")
    h = hashlib.sha256()
    h.update(DOMAIN)
    h.update(b"\x00")
    h.update(salt)
    h.update(len(p).to_bytes(8, "big"))
    h.update(p)
    h.update(len(payload).to_bytes(8, "big"))
    h.update(payload)
    return h.digest()


def case_commitment(case: dict) -> str:
    return commitment(
        bytes.fromhex(case["salt"]), case["principal"], bytes.fromhex(case["payload"])
    ).hex()


def main(argv: list) -> int:
    write = "--write" in argv
    args = [a for a in argv if a != "--write"]
    path = args[0] if args else DEFAULT
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    cases = doc["cases"]
    if not cases:
        print("%s: no cases" % path, file=sys.stderr)
        return 1
    if write:
        for case in cases:
            case["commitment"] = case_commitment(case)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")
        print("wrote %d commitments to %s" % (len(cases), path))
        return 0
    bad = 0
    for case in cases:
        got = case_commitment(case)
        if got != case["commitment"]:
            print(
                "MISMATCH %s: computed %s, file says %s" % (case["name"], got, case["commitment"]),
                file=sys.stderr,
            )
            bad += 1
    if bad:
        print("%d of %d commitments do not match" % (bad, len(cases)), file=sys.stderr)
        return 1
    print("%d commitments match" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
