"""Tags as each cloud accepts them (pure). GCP's labels are in providers/gcp_compute.py
(``sanitize_labels``); this is EC2's side.

AWS's rules for tags (EC2 and every service that tags, as the tagging docs state them):
at most 50 per resource; a key is 1-128 Unicode characters, a value 0-256; the characters
accepted everywhere are letters, numbers, spaces and ``+ - = . _ : / @``; and ``aws:``, in any
case, is reserved as a prefix of keys and of values. EC2 itself takes more characters, but
cost allocation and the Resource Groups Tagging API hold to this set, and those are what the
tags are for.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping

EC2_MAX_TAGS = 50
EC2_KEY_LEN = 128
EC2_VALUE_LEN = 256
_EC2_PUNCTUATION = frozenset(" +-=._:/@")
_RESERVED = "aws:"


def _ec2_char_ok(c: str) -> bool:
    """A letter or number (any script, on the Basic Multilingual Plane, since AWS counts
    characters and some of its services count UTF-16 units), or the allowed punctuation."""
    if c in _EC2_PUNCTUATION:
        return True
    return ord(c) <= 0xFFFF and unicodedata.category(c)[0] in "LN"


def _ec2_clean(text: str, limit: int) -> str:
    """NFC (so 'e' plus a combining accent is one letter), runs of other characters -> '_',
    the reserved prefix defused (``aws:x`` -> ``aws_x``), then cut to ``limit``."""
    out: list[str] = []
    for c in unicodedata.normalize("NFC", text):
        if _ec2_char_ok(c):
            out.append(c)
        elif not out or out[-1] != "_":
            out.append("_")
    clean = "".join(out)
    if clean[: len(_RESERVED)].lower() == _RESERVED:
        clean = f"{clean[:3]}_{clean[4:]}"
    return clean[:limit]


def ec2_tag_value(value: str) -> str:
    return _ec2_clean(value, EC2_VALUE_LEN)


def ec2_tag_key(key: str) -> str:
    """As a value, within 128 characters and never empty."""
    return _ec2_clean(key, EC2_KEY_LEN) or "_"


def ec2_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags EC2 (and cost allocation) accepts as they are.

    A key that is already valid keeps its name, so sched's own (``Name``, ``sched:cluster``,
    ...) and any valid user key are never renamed; the others are cleaned and, if that makes
    them collide, kept apart by a hash of the original key, in sorted order, so the same
    tags always give the same result. More than 50 is an error rather than a silent cut."""
    if len(tags) > EC2_MAX_TAGS:
        raise ValueError(f"EC2 allows at most {EC2_MAX_TAGS} tags, got {len(tags)}")
    valid = sorted(k for k in tags if ec2_tag_key(k) == k)
    cleaned = sorted(k for k in tags if ec2_tag_key(k) != k)
    out: dict[str, str] = {}
    for key in [*valid, *cleaned]:
        base = clean = ec2_tag_key(key)
        tries = 0
        while clean in out:  # a hashed name can be taken too: hash again until one is free
            salt = key if not tries else f"{key}#{tries}"
            clean = f"{base[: EC2_KEY_LEN - 9]}-{hashlib.sha256(salt.encode()).hexdigest()[:8]}"
            tries += 1
        out[clean] = ec2_tag_value(tags[key])
    return out
