"""Fails when a package in the build graph declares a rust-version above the workspace's MSRV.

Reads `cargo metadata` JSON on stdin; the MSRV is the first argument.
"""
import json
import sys


def parse(version):
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


msrv = parse(sys.argv[1])
metadata = json.load(sys.stdin)
used = {node["id"] for node in metadata["resolve"]["nodes"]}
too_new = [
    f'{package["name"]} {package["version"]} needs Rust {package["rust_version"]}'
    for package in metadata["packages"]
    if package["id"] in used and package.get("rust_version") and parse(package["rust_version"]) > msrv
]
if too_new:
    print(f"MSRV {sys.argv[1]} is too old for:", *too_new, sep="\n  ")
    sys.exit(1)
print(f"MSRV {sys.argv[1]}: {len(used)} packages checked")
