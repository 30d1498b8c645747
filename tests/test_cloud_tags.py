"""Tags as each cloud takes them: EC2 tags (providers/cloud_tags.py) and GCE labels
(providers/gcp_compute.py), checked against the rules as the clouds document them, not as
the code spells them."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.aws_compute import IDEMPOTENCY_TAG, run_instances_args
from providers.cloud_tags import ec2_tags
from providers.gcp_compute import sanitize_label_key, sanitize_labels
from providers.instances import LaunchRequest
from providers.offering import MarketKind, Offering, PriceSource

INJECTION = 'x"; touch /tmp/pwned; echo "'

# Keys and values: anything, plus a small alphabet that makes cleaned forms collide often.
_colliding = st.text(alphabet="aAbB:._-; é\u00e9e\u0301\U0001f600", max_size=6)
_text = st.one_of(st.text(max_size=140), _colliding)
_tags = st.dictionaries(_text, st.one_of(st.text(max_size=300), _colliding), max_size=50)


def _hash(key: str) -> str:
    """The 8 hex digits both clouds' cleaners append to keep colliding keys apart."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


# ---- EC2: AWS's documented tag rules ------------------------------------------------------


def ec2_char_ok(c: str) -> bool:
    """'letters, numbers, and spaces representable in UTF-8, and + - = . _ : / @'."""
    return c.isalnum() or c in " +-=._:/@"


def ec2_key_ok(key: str) -> bool:
    return 1 <= len(key) <= 128 and all(map(ec2_char_ok, key)) and not reserved(key)


def ec2_value_ok(value: str) -> bool:
    return len(value) <= 256 and all(map(ec2_char_ok, value)) and not reserved(value)


def reserved(text: str) -> bool:
    """'aws:, AWS:, or any upper or lowercase combination' is reserved as a prefix."""
    return text[:4].lower() == "aws:"


@given(_tags)
def test_ec2_tags_follow_the_rules_and_keep_every_key(tags: dict[str, str]) -> None:
    out = ec2_tags(tags)
    assert len(out) == len(tags)  # distinct keys stay distinct
    assert all(ec2_key_ok(k) for k in out), out
    assert all(ec2_value_ok(v) for v in out.values()), out
    assert ec2_tags(dict(reversed(list(tags.items())))) == out  # order does not matter
    assert ec2_tags(out) == out  # valid tags are left as they are


def plain(text: str) -> bool:
    """NFC and on the Basic Multilingual Plane: what ec2_tags keeps as it is (it leaves
    characters outside the BMP out, since some AWS services count UTF-16 units)."""
    return unicodedata.is_normalized("NFC", text) and all(ord(c) <= 0xFFFF for c in text)


@given(_tags)
def test_valid_ec2_tags_are_never_renamed(tags: dict[str, str]) -> None:
    out = ec2_tags(tags)
    for key, value in tags.items():
        if ec2_key_ok(key) and plain(key):
            assert key in out
            if ec2_value_ok(value) and plain(value):
                assert out[key] == value


def test_ec2_tags_examples() -> None:
    assert ec2_tags(
        {
            "team": "ML Infra",
            "aws:owner": "AWS:me",
            "cost;center": INJECTION,
            "équipe": "données",
            "x" * 200: "y" * 300,
        }
    ) == {
        "team": "ML Infra",
        "aws_owner": "AWS_me",
        "cost_center": "x_ touch /tmp/pwned_ echo _",
        "équipe": "données",
        "x" * 128: "y" * 256,
    }
    with pytest.raises(ValueError, match="50 tags"):
        ec2_tags({f"k{i}": "" for i in range(51)})


def test_ec2_collisions_stay_apart_even_with_a_key_named_like_the_hash() -> None:
    hashed = f"a_b-{_hash('a;b')}"
    out = ec2_tags({"a_b": "1", "a;b": "2", hashed: "3"})
    assert len(out) == 3
    assert out["a_b"] == "1" and out[hashed] == "3"  # valid keys keep their names
    assert sorted(out.values()) == ["1", "2", "3"]


def test_launch_tags_are_cleaned_and_sched_keys_kept() -> None:
    offering = Offering(
        cloud="aws",
        region="us-east-1",
        zone="us-east-1a",
        instance_type="g5.xlarge",
        vcpus=4,
        memory_gb=16,
        market=MarketKind.SPOT,
        price_per_hour=1.0,
        as_of=datetime(2026, 3, 1, tzinfo=UTC),
        price_source=PriceSource.LIVE,
    )
    request = LaunchRequest(
        offering=offering,
        idempotency_key="sched-abc-1-head",
        name="sched-abc-1-head",
        tags={"team": INJECTION, "sched:cluster": "sched-abc-1", "aws:x": "1"},
        image="ami-12c6146b",
    )
    [spec] = run_instances_args(request)["TagSpecifications"]
    tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
    assert tags == {
        "team": "x_ touch /tmp/pwned_ echo _",
        "sched:cluster": "sched-abc-1",
        "aws_x": "1",
        "Name": "sched-abc-1-head",
        IDEMPOTENCY_TAG: "sched-abc-1-head",
    }


# ---- GCE: Google's documented label rules -------------------------------------------------


def gce_char_ok(c: str) -> bool:
    """Values: ``[\\p{Ll}\\p{Lo}\\p{N}_-]``; keys the same, starting with ``\\p{Ll}\\p{Lo}``."""
    return c in "_-" or unicodedata.category(c) in ("Ll", "Lo") or unicodedata.category(c)[0] == "N"


def gce_key_ok(key: str) -> bool:
    return (
        1 <= len(key) <= 63
        and len(key.encode()) < 128
        and unicodedata.category(key[0]) in ("Ll", "Lo")
        and all(map(gce_char_ok, key))
    )


def gce_value_ok(value: str) -> bool:
    return len(value) <= 63 and len(value.encode()) < 128 and all(map(gce_char_ok, value))


@given(st.dictionaries(_text, st.one_of(st.text(max_size=80), _colliding), max_size=64))
def test_gce_labels_follow_the_documented_rules(tags: dict[str, str]) -> None:
    out = sanitize_labels(tags)
    assert len(out) == len(tags)
    assert all(gce_key_ok(k) for k in out), out
    assert all(gce_value_ok(v) for v in out.values()), out
    assert sanitize_labels(dict(reversed(list(tags.items())))) == out


def test_sched_keys_keep_their_label_whatever_the_job_is_tagged() -> None:
    """The orphan sweep looks VMs up by sanitize_label_key('sched:cluster'); a job tag
    'sched.cluster' (which sorts first) once took that label, so the sweep read the job's
    value and took a live VM for an orphan."""
    labels = sanitize_labels({"sched.cluster": "mine", "sched:cluster": "sched-a-1"})
    assert labels[sanitize_label_key("sched:cluster")] == "sched-a-1"
    assert sorted(labels.values()) == ["mine", "sched-a-1"]


@pytest.mark.parametrize(
    "tags",
    [
        # 'a/b-<hash of a:b>' cleans to the label 'a:b' is given when 'a.b' has 'a_b'
        {"a.b": "1", "a:b": "2", f"a/b-{_hash('a:b')}": "3"},
        # 'A_b-<hash of a.b>' takes the label 'a.b' is given when 'a:b' has 'a_b'
        {"a:b": "1", "a.b": "2", f"A_b-{_hash('a.b')}": "3"},
    ],
)
def test_gce_collisions_stay_apart_even_with_a_key_named_like_the_hash(
    tags: dict[str, str],
) -> None:
    """Once: a collision onto a label already made from a hash overwrote it, losing a tag."""
    labels = sanitize_labels(tags)
    assert sorted(labels.values()) == ["1", "2", "3"]
