"""Fuzzing the files and settings sched reads besides job specs (issue 8, bad input):
SCHED_* settings, the FinOps files, the network rate table and SkyPilot catalogs (the
clouds' price answers: tests/test_fuzz_price_answers.py).

Each reader either gives a usable result or fails with one error line that names the
variable or the file (and line); never a KeyError, TypeError or a float() traceback.
"""

from __future__ import annotations

import csv
import io
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from providers.network import (
    DEFAULT_NETWORK_RATES,
    Location,
    NetworkPrices,
    NetworkRatesError,
    load_network_prices,
)
from providers.skypilot_catalog import CatalogError, CatalogLoad, load_skypilot_catalog
from scheduler.cli import app
from scheduler.config import _ENV, ConfigError, Settings, load_settings
from scheduler.finops_config import load_budgets, load_commitments
from tests.damage import damaged, fuzz, one_line
from tests.test_skypilot_catalog import AWS_HEADER, AWS_ROWS, GCP_HEADER, GCP_ROWS

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = str(REPO / "configs" / "examples" / "quickstart.yaml")
REAL_GCP_CATALOG = REPO.parent / "shared" / "data" / "gcp-catalog-anycloud" / "gcp" / "vms.csv"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


# ---- SCHED_* settings ---------------------------------------------------------------------

setting_values = st.one_of(
    st.sampled_from(["0", "-1", "1", "0.5", "1e308", "-1e308", "nan", "inf", "-inf", "1e3"]),
    st.sampled_from(["99999", "65536", " 7 ", "0x10", "1_000", "true", "maybe", "1h", "30s"]),
    st.sampled_from(["http://", "http://:80", "http://h:99999", "http://h:x", "ftp://h", "h:80"]),
    st.sampled_from(["http://127.0.0.1:8265", "https://proxy.example/gcp", "http://[::1]:80"]),
    st.sampled_from(["sqlite://", "foo://x", "postgresql://u@h:notaport/db", "garbage"]),
    st.sampled_from(["aws", "gcp", "aws,gcp", "aws,,gcp", "AWS", "aws,azure", ",", "none"]),
    st.sampled_from(["us-east-1,eu-west-1", "us east", "team,Team", "{ip", "http://{host}"]),
    st.sampled_from(["http://{ip}:{port}", "{ip!x}", "{port:q}", "http://{ip}:{port}/\n"]),
    st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=12),
)
# Set for the CLI too, except the data directory and database (fuzzed paths would be
# created) and live commitments (they call the clouds).
NOT_IN_CLI = {"SCHED_DB_URL", "SCHED_COMMITMENTS_LIVE"}


@fuzz(400)
@given(var=st.sampled_from(sorted(_ENV)), value=setting_values)
@example(var="SCHED_PRICE_TTL", value="1e308")  # once: timedelta overflow in `sched plan`
@example(var="SCHED_POLL_INTERVAL", value="inf")  # once: time.sleep(inf)
@example(var="SCHED_DB_URL", value="garbage")  # once: sqlalchemy ArgumentError traceback
@example(var="SCHED_CLUSTER_ADDRESS", value="{ip!x}")  # once: accepted, failed at launch
@example(var="SCHED_AWS_REGIONS", value="us east")  # once: accepted, failed every refresh
def test_settings_are_usable_or_one_line_naming_the_variable(
    tmp_path: Path, var: str, value: str
) -> None:
    environ = {"SCHED_HOME": str(tmp_path), "SCHED_REQUIRED_TAGS": "none", var: value}
    try:
        loaded = load_settings(environ)
    except ConfigError as exc:
        message = str(exc)
        one_line(message, "SCHED_")
        # A check across settings names the one that is missing (SCHED_AWS_IMAGE...).
        across = var in ("SCHED_LAUNCH_CLOUDS", "SCHED_COMMITMENTS_LIVE")
        assert message.startswith(f"{var}: ") or across, message
        return
    _usable(loaded)


def _usable(s: Settings) -> None:
    """What the rest of sched does with each setting, done here: no overflow, no bad URL."""
    for seconds in (s.price_ttl_s, s.pool_cooldown_s, s.cluster_idle_stop_s, s.poll_interval_s):
        assert math.isfinite(seconds) and NOW.timestamp() + seconds < 253402300799  # year 9999
    assert math.isfinite(s.audit_idle_hours * 3600) and math.isfinite(s.local_price_per_hour)
    assert s.cluster_address.format(ip="1.2.3.4", public_ip="1.2.3.4", private_ip="1", port=1)
    for url in (s.ray_address, s.gcp_api_endpoint, s.aws_metadata_url, s.gcp_metadata_url):
        assert url is None or url.startswith(("http://", "https://"))


@fuzz(40)
@given(var=st.sampled_from(sorted(set(_ENV) - NOT_IN_CLI)), value=setting_values)
@example(var="SCHED_PRICE_TTL", value="1e308")
def test_cli_with_a_bad_setting_is_exit_2_and_one_line(
    tmp_path: Path, var: str, value: str
) -> None:
    env = _cli_env(tmp_path)
    env[var] = value
    expected = None
    try:
        load_settings({k: v for k, v in env.items() if v is not None})
    except ConfigError as exc:
        expected = str(exc)
    result = CliRunner().invoke(app, ["plan", "--offline", QUICKSTART], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if expected is not None:
        assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")
    else:
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            one_line(result.stderr.strip().splitlines()[-1], "error: ")


def test_home_of_an_unknown_user_names_sched_home(tmp_path: Path) -> None:
    """Once: Path.expanduser() raised RuntimeError, which the CLI reported as exit 1
    ('Could not determine home directory.') without naming the variable."""
    with pytest.raises(ConfigError, match=r"^SCHED_HOME: "):
        load_settings({"SCHED_HOME": "~no_such_user_sched_fuzz/data"})


@pytest.mark.parametrize(
    ("env", "ends"),
    [
        ({"SCHED_HOME": "/dev/null/x"}, "'"),  # once: the closing quote was stripped
        ({"SCHED_DB_URL": "postgresql://u@127.0.0.1:1/db"}, ""),  # once: three lines
    ],
)
def test_store_errors_are_one_whole_line(tmp_path: Path, env: dict[str, str], ends: str) -> None:
    result = CliRunner().invoke(app, ["list"], env={**_cli_env(tmp_path), **env})
    assert result.exit_code == 2, result.output
    one_line(result.stderr.rstrip("\n"), "error: cannot open database ")
    assert result.stderr.rstrip("\n").endswith(ends)


def _cli_env(home: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SCHED_")}
    env.update({"SCHED_HOME": str(home), "SCHED_REQUIRED_TAGS": "none", "COLUMNS": "200"})
    return env


# ---- SCHED_COMMITMENTS and SCHED_BUDGETS files ------------------------------------------

COMMITMENTS = {
    "commitments": [
        {
            "id": "sp-1",
            "kind": "aws_compute_savings_plan",
            "hourly_commitment": 6,
            "discount": 0.4,
            "start": "2026-01-01",
            "end": "2030-01-01",
        },
        {
            "id": "cud-1",
            "kind": "gcp_resource_cud",
            "hourly_commitment": 2.5,
            "discount": 0.55,
            "regions": ["us-central1"],
            "family": "a2",
            "start": "2026-01-01T00:00:00Z",
            "end": "2029-01-01",
        },
    ]
}
BUDGETS = {
    "budgets": [
        {"tag": "team", "value": "nlp", "monthly_usd": 10, "alert_at": 0.5},
        {"tag": "team", "value": "cv", "monthly_usd": 1000},
    ]
}


@fuzz(100)
@given(
    which=st.sampled_from(["SCHED_COMMITMENTS", "SCHED_BUDGETS"]),
    data=st.data(),
)
def test_finops_files_load_or_one_line_naming_the_file(
    tmp_path: Path, which: str, data: st.DataObject
) -> None:
    original, load = (
        (COMMITMENTS, load_commitments) if which == "SCHED_COMMITMENTS" else (BUDGETS, load_budgets)
    )
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(data.draw(damaged(original)), allow_unicode=True))
    try:
        found = load(path)
    except ConfigError as exc:
        one_line(str(exc), f"{path}: ")
        expected: str | None = str(exc)
    else:
        assert isinstance(found, list)
        expected = None
    env = _cli_env(tmp_path)
    env[which] = str(path)
    command = "commitments" if which == "SCHED_COMMITMENTS" else "budgets"
    result = CliRunner().invoke(app, [command], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if expected is not None:
        assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")
    else:
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00commitments: []\n", b"commitments:\n  - {id: a, start: 2026-13-01}\n"],
    ids=["not-utf8", "impossible-date"],
)
def test_unreadable_finops_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    """read_yaml catches OSError and YAMLError only: UnicodeDecodeError, and the ValueError
    PyYAML's date constructor raises, escape as tracebacks (`sched commitments` exits 1)."""
    path = tmp_path / "commitments.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"^{path}: "):
        load_commitments(path)


def test_a_budget_written_twice_is_refused_not_half_read(tmp_path: Path) -> None:
    """The last of two equal keys used to win silently: the $10 limit below was read as
    $100,000. Now the file is refused, naming the line, and `sched budgets` exits 2."""
    path = tmp_path / "budgets.yaml"
    path.write_text(
        "budgets:\n  - tag: team\n    value: nlp\n    monthly_usd: 10\n    monthly_usd: 100000\n"
    )
    expected = f"{path}: not valid YAML: line 5: key 'monthly_usd' is given twice"
    with pytest.raises(ConfigError) as caught:
        load_budgets(path)
    assert str(caught.value) == expected
    env = _cli_env(tmp_path) | {"SCHED_BUDGETS": str(path)}
    result = CliRunner().invoke(app, ["budgets"], env=env)
    assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")


# ---- the network rate table -----------------------------------------------------------------

NETWORK_TABLE = yaml.safe_load(DEFAULT_NETWORK_RATES.read_text())


@fuzz(100)
@given(table=damaged(NETWORK_TABLE))
@example(
    table={
        **NETWORK_TABLE,
        "clouds": {"aws": {**NETWORK_TABLE["clouds"]["aws"], "cross_zone_usd": math.inf}},
    }
)
def test_network_table_loads_and_prices_or_one_line(tmp_path: Path, table: Any) -> None:
    """Once: `.inf` rates were accepted and failed (pydantic error) when a route was priced."""
    path = tmp_path / "network_rates.yaml"
    path.write_text(yaml.safe_dump(table, allow_unicode=True))
    try:
        prices = load_network_prices(path)
    except NetworkRatesError as exc:
        one_line(str(exc), f"{path}: ")
        return
    _prices_every_pair(prices)


def _prices_every_pair(prices: NetworkPrices) -> None:
    """Every route between listed regions (and to the other cloud) has a finite price."""
    for cloud, rates in prices.clouds.items():
        regions = [r for names in rates.regions.values() for r in names][:4]
        for src in regions:
            for dst in [*regions, None]:
                target = (
                    Location(cloud="local") if dst is None else Location(cloud=cloud, region=dst)
                )
                for gb in (0.5, 5e4):
                    cost = prices.transfer_cost(Location(cloud=cloud, region=src), target, gb)
                    assert math.isfinite(cost.usd) and cost.usd >= 0


# ---- SkyPilot catalogs ----------------------------------------------------------------------


def _csv(header: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


CATALOGS = {"gcp": _csv(GCP_HEADER, GCP_ROWS), "aws": _csv(AWS_HEADER, AWS_ROWS)}
if REAL_GCP_CATALOG.is_file():  # the first 400 lines of the real one, when it is here
    CATALOGS["real-gcp"] = b"".join(REAL_GCP_CATALOG.read_bytes().splitlines(True)[:400])


@st.composite
def damaged_catalog(draw: st.DrawFn) -> tuple[str, bytes, str]:
    name = draw(st.sampled_from(sorted(CATALOGS)))
    raw = CATALOGS[name]
    lines = raw.decode().splitlines(True)
    op = draw(st.sampled_from(["truncate", "drop-column", "rename-column", "garble", "bytes"]))
    if op == "truncate":
        return name, raw[: draw(st.integers(0, len(raw) - 1))], op
    if op == "bytes":
        at = draw(st.integers(0, len(raw)))
        return name, raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:], op
    rows = list(csv.reader(lines))
    column = draw(st.integers(0, len(rows[0]) - 1))
    if op == "drop-column":
        rows = [r[:column] + r[column + 1 :] for r in rows]
    elif op == "rename-column":
        rows[0][column] = draw(st.sampled_from(["", "price", rows[0][column] + " ", "Price"]))
    else:
        for _ in range(draw(st.integers(1, 4))):
            row = draw(st.integers(1, len(rows) - 1))
            cell = draw(st.integers(0, len(rows[row]) - 1))
            rows[row][cell] = draw(
                st.sampled_from(["", "nan", "inf", "-1", "1e400", "x", "0.5.1", "700.0", "{"])
                | st.text(max_size=8)
            )
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return name, out.getvalue().encode(), op


def check_catalog(path: Path) -> CatalogLoad | str:
    """The load, checked for sense, or the CatalogError message, checked for form."""
    try:
        load = load_skypilot_catalog(path, as_of=NOW)
    except CatalogError as exc:
        one_line(str(exc), f"{path}: ")
        return str(exc)
    assert load.rows_read == load.rows_used + sum(load.rows_skipped.values())
    for o in load.offerings:
        assert math.isfinite(o.price_per_hour) and o.price_per_hour >= 0
        assert o.vcpus > 0 and o.memory_gb > 0 and o.zone and o.region
    return load


def _rows_in(raw: bytes) -> int:
    return sum(1 for line in raw.decode().splitlines()[1:] if line.strip())


@fuzz(300)
@given(case=damaged_catalog())
@example(case=("gcp", CATALOGS["gcp"][:-3], "truncate"))  # once: a cut price read as a price
def test_damaged_catalogs_load_or_one_error_naming_file_and_line(
    tmp_path: Path, case: tuple[str, bytes, str]
) -> None:
    """A file cut short anywhere but at a line break is refused (never read in part: see
    providers/skypilot_catalog.py); cut at a line break, it is a shorter catalog."""
    name, raw, op = case
    path = tmp_path / ("aws" if name == "aws" else "gcp") / "vms.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    result = check_catalog(path)
    if op != "truncate" or not raw.strip():
        return
    if raw.endswith(b"\n"):
        assert isinstance(result, CatalogLoad) or "line 1:" in result, result
        if isinstance(result, CatalogLoad):
            assert result.rows_read == _rows_in(raw)
    elif b"\n" in raw.rstrip(b"\n"):  # cut inside a data line
        assert isinstance(result, str) and " line " in result, result


@pytest.mark.skipif(not REAL_GCP_CATALOG.is_file(), reason=f"{REAL_GCP_CATALOG} not present")
@fuzz(6)
@given(fraction=st.floats(0.01, 0.999))
def test_real_catalog_cut_short_is_refused(tmp_path: Path, fraction: float) -> None:
    raw = REAL_GCP_CATALOG.read_bytes()
    cut = raw[: int(len(raw) * fraction)]
    assume(not cut.endswith(b"\n"))
    path = tmp_path / "gcp" / "vms.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(cut)
    message = check_catalog(path)
    assert isinstance(message, str)
    line = cut.count(b"\n") + 1
    assert f": line {line}: the file ends inside this line" in message
