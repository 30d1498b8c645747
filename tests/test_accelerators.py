"""parse_accelerator: reading 'A100:8', 'H100' and 'tpu-v5p-8' into AcceleratorRequest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.accelerators import (
    GPUS,
    MAX_PER_NODE,
    TPU_ALIASES,
    TPUS,
    AcceleratorKind,
    AcceleratorRequest,
    parse_accelerator,
)


@pytest.mark.parametrize(
    ("text", "name", "count", "memory_gb"),
    [
        ("A100:8", "A100", 8, 40),
        ("h100", "H100", 1, 80),
        ("H100:1", "H100", 1, 80),
        ("a100-80gb:4", "A100-80GB", 4, 80),
        ("  L4:2  ", "L4", 2, 24),
        ("t4:16", "T4", 16, 16),
        ("H100-MEGA:8", "H100-MEGA", 8, 80),
    ],
)
def test_gpu_requests(text: str, name: str, count: int, memory_gb: float) -> None:
    req = parse_accelerator(text)
    assert req.kind is AcceleratorKind.GPU
    assert req.name == name
    assert req.count == count
    assert req.memory_gb == memory_gb
    assert req.tpu_chips is None


@pytest.mark.parametrize(
    ("text", "name", "chips", "memory_gb"),
    [
        # v2/v3/v4/v5p slice sizes count TensorCores, two per chip.
        ("tpu-v5p-8", "tpu-v5p-8", 4, 95),
        ("TPU-V5P-16", "tpu-v5p-16", 8, 95),
        ("tpu-v4-32", "tpu-v4-32", 16, 32),
        ("tpu-v2-8", "tpu-v2-8", 4, 8),
        # v5e is an alias of v5litepod, and v5e/v6e sizes count chips.
        ("tpu-v5e-4", "tpu-v5litepod-4", 4, 16),
        ("tpu-v5litepod-4", "tpu-v5litepod-4", 4, 16),
        ("tpu-v6e-8", "tpu-v6e-8", 8, 32),
        ("tpu-v5e-1", "tpu-v5litepod-1", 1, 16),
    ],
)
def test_tpu_requests(text: str, name: str, chips: int, memory_gb: float) -> None:
    req = parse_accelerator(text)
    assert req.kind is AcceleratorKind.TPU
    assert req.name == name
    assert req.count == 1  # a TPU slice is one device
    assert req.tpu_chips == chips
    assert req.memory_gb == memory_gb


def test_v5e_alias_gives_same_request_as_v5litepod() -> None:
    assert parse_accelerator("tpu-v5e-4") == parse_accelerator("tpu-v5litepod-4")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("A100:zero", r"count 'zero' in 'A100:zero' must be a positive whole number"),
        ("A100:0", r"count '0' in 'A100:0' must be a positive whole number"),
        ("A100:-1", r"count '-1' in 'A100:-1' must be a positive whole number"),
        ("A100:", r"count '' in 'A100:' must be a positive whole number"),
        ("A100:1.5", r"count '1.5'"),
        ("Z9", r"unknown accelerator 'Z9' \(known: B200, .*A100.*, tpu-GEN-SIZE\)"),
        ("A10O:8", r"unknown accelerator 'A10O'"),
        ("tpu-v5p-7", r"tpu-v5p-7: size must be a multiple of 2 cores"),
        ("tpu-v4-1", r"size must be a multiple of 2 cores"),
        ("tpu-v99-8", r"unknown TPU generation 'v99' \(known: tpu-v2-N, .*tpu-v5p-N"),
        ("tpu-v5p-0", r"TPU slice size '0' must be a positive whole number"),
        ("tpu-v5p-x", r"TPU slice size 'x' must be a positive whole number"),
        ("tpu-v5p", r"unknown accelerator 'tpu-v5p'"),
        ("", r"'' is not NAME, NAME:COUNT or tpu-GEN-SIZE"),
        ("   ", r"'' is not NAME, NAME:COUNT or tpu-GEN-SIZE"),
        ("8xA100", r"is not NAME, NAME:COUNT or tpu-GEN-SIZE"),
        ("A100:8:2", r"is not NAME, NAME:COUNT or tpu-GEN-SIZE"),
    ],
)
def test_invalid_requests(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_accelerator(text)


def test_str_of_gpu_request_has_count_and_tpu_is_bare_name() -> None:
    assert str(parse_accelerator("a100:8")) == "A100:8"
    assert str(parse_accelerator("h100")) == "H100:1"
    assert str(parse_accelerator("tpu-v5e-8")) == "tpu-v5litepod-8"


def test_request_is_frozen() -> None:
    req = parse_accelerator("A100:8")
    with pytest.raises(ValueError):
        req.count = 2  # type: ignore[misc]
    assert req.count == 8


# -- properties ---------------------------------------------------------------------------

_GPU_NAMES = [info.name for info in GPUS.values()]
_TPU_GENS = [*TPUS, *TPU_ALIASES]


def _random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))


@st.composite
def valid_gpu_text(draw: st.DrawFn) -> str:
    name = _random_case(draw, draw(st.sampled_from(_GPU_NAMES)))
    count = draw(st.none() | st.integers(min_value=1, max_value=MAX_PER_NODE))
    return name if count is None else f"{name}:{count}"


@st.composite
def valid_tpu_text(draw: st.DrawFn) -> str:
    gen = draw(st.sampled_from(_TPU_GENS))
    per_chip = TPUS[TPU_ALIASES.get(gen, gen)].cores_per_chip
    chips = draw(st.integers(min_value=1, max_value=4096))
    return _random_case(draw, f"tpu-{gen}-{chips * per_chip}")


valid_text = valid_gpu_text() | valid_tpu_text()

# Text that gets past the first checks: real names, 'tpu-' prefixes and ':' counts with
# arbitrary tails, so the fuzzing reaches the count and slice-size branches.
near_valid_text = st.one_of(
    st.text(),
    st.builds(lambda n, t: f"{n}:{t}", st.sampled_from(_GPU_NAMES), st.text()),
    st.builds(lambda g, t: f"tpu-{g}-{t}", st.sampled_from(_TPU_GENS), st.text()),
    st.builds(lambda t: f"tpu-{t}", st.text()),
    st.from_regex(r"\A\s*[A-Za-z][A-Za-z0-9-]{0,12}(:[-0-9a-z]{0,4})?\s*\Z"),
    st.from_regex(r"\A(?i:tpu)-v[0-9]{1,2}[a-z]{0,9}-[0-9]{1,4}\Z"),
)


@settings(max_examples=300, deadline=None)
@given(near_valid_text)
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        req = parse_accelerator(text)
    except ValueError:
        return
    assert isinstance(req, AcceleratorRequest)
    assert req.count >= 1


@settings(max_examples=200, deadline=None)
@given(valid_text)
def test_str_round_trips(text: str) -> None:
    req = parse_accelerator(text)
    again = parse_accelerator(str(req))
    assert again == req
    assert str(again) == str(req)


@settings(max_examples=100, deadline=None)
@given(valid_tpu_text())
def test_tpu_chips_times_cores_per_chip_is_slice_size(text: str) -> None:
    req = parse_accelerator(text)
    gen, size = req.name.removeprefix("tpu-").rsplit("-", 1)
    assert req.tpu_chips is not None
    assert req.tpu_chips * TPUS[gen].cores_per_chip == int(size)


def test_count_above_a_node_is_rejected() -> None:
    with pytest.raises(ValueError, match="more than 16 per node"):
        parse_accelerator("A100:17")
