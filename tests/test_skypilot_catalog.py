"""SkyPilot-format vms.csv loading: both clouds' column orders, GCP composition, errors."""

from __future__ import annotations

import csv
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobs.accelerators import GPUS, TPUS
from providers.aws_prices import load_spot_advisor
from providers.gcp_prices import DEFAULT_SPOT_INTERRUPTION_RATE
from providers.gcp_tpu import slice_host
from providers.offering import InterruptionSource, MarketKind, Offering, PriceSource
from providers.skypilot_catalog import CatalogError, CatalogLoad, load_skypilot_catalog
from providers.skypilot_format import (
    PLACEHOLDER_PRICE,
    cloud_from_instance_type,
    cloud_from_path,
    gpu_memory_mib,
)

REAL_GCP = Path(__file__).resolve().parent.parent.parent / (
    "shared/data/gcp-catalog-anycloud/gcp/vms.csv"
)
AS_OF = datetime(2026, 5, 20, tzinfo=UTC)

GCP_HEADER = [
    "InstanceType",
    "vCPUs",
    "MemoryGiB",
    "AcceleratorName",
    "AcceleratorCount",
    "GpuInfo",
    "Region",
    "AvailabilityZone",
    "Price",
    "SpotPrice",
]
AWS_HEADER = [
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "GpuInfo",
    "Price",
    "SpotPrice",
    "Region",
    "AvailabilityZone",
    "Arch",
]


def gpu_info(mib: int, name: str | None = None) -> str:
    """GpuInfo as SkyPilot writes it: a Python repr, single quotes."""
    gpu: dict[str, object] = {"MemoryInfo": {"SizeInMiB": mib}}
    if name:
        gpu = {"Name": name, "Manufacturer": "NVIDIA", "Count": 1, **gpu}
    return repr({"Gpus": [gpu]})


def gcp_row(
    itype: str = "",
    vcpus: str = "",
    mem: str = "",
    acc: str = "",
    count: str = "",
    info: str = "",
    zone: str = "us-central1-a",
    price: str = "",
    spot: str = "",
) -> dict[str, str]:
    return {
        "InstanceType": itype,
        "vCPUs": vcpus,
        "MemoryGiB": mem,
        "AcceleratorName": acc,
        "AcceleratorCount": count,
        "GpuInfo": info,
        "Region": zone.rsplit("-", 1)[0],
        "AvailabilityZone": zone,
        "Price": price,
        "SpotPrice": spot,
    }


def aws_row(
    itype: str,
    acc: str,
    count: str,
    vcpus: str,
    mem: str,
    info: str,
    price: str,
    spot: str,
    region: str = "us-east-1",
    zone: str = "use1-az1",
) -> dict[str, str]:
    return {
        "InstanceType": itype,
        "AcceleratorName": acc,
        "AcceleratorCount": count,
        "vCPUs": vcpus,
        "MemoryGiB": mem,
        "GpuInfo": info,
        "Price": price,
        "SpotPrice": spot,
        "Region": region,
        "AvailabilityZone": zone,
        "Arch": "x86_64",
    }


def write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


GCP_ROWS = [
    # hosts (priced without GPUs) and a CPU machine
    gcp_row("n1-standard-8", "8.0", "30.0", price="0.38", spot="0.08"),
    gcp_row("n1-standard-16", "16.0", "60.0", price="0.76", spot="0.16"),
    gcp_row("a2-highgpu-1g", "12.0", "85.0", price="0.9", spot="0.3"),
    gcp_row("g2-standard-4", "4.0", "16.0", price="0.2", spot="0.07"),
    gcp_row("g2-standard-8", "8.0", "32.0", price="0.3", spot="0.1"),
    gcp_row("e2-standard-4", "4.0", "16.0", price="0.13", spot="0.04"),
    # accelerators priced alone
    gcp_row(acc="T4", count="1", info=gpu_info(16384), price="0.35", spot="0.16"),
    gcp_row(acc="T4", count="2", info=gpu_info(16384), price="0.7", spot="0.32"),
    gcp_row(acc="A100", count="1", info=gpu_info(40960), price="2.9", spot=""),
    gcp_row(acc="L4", count="1", info=gpu_info(24576), price="0.56", spot="0.22"),
    gcp_row(acc="P4", count="1", info=gpu_info(8192), price="0.6", spot="0.2"),
    gcp_row(acc="V100", count="1", info=gpu_info(16384), zone="us-west1-b", price="2.48", spot="1"),
    gcp_row(acc="tpu-v5p-8", count="1", info="tpu-v5p-8", price="16.8", spot="7.2"),
    gcp_row(acc="tpu-v6e-8", count="1", info="tpu-v6e-8", price="700.0", spot="700.0"),
    gcp_row(acc="tpu-v6e-4", count="1", info="tpu-v6e-4", price="10.8", spot="700.0"),
    gcp_row(acc="tpu-v5p-8", count="1", info="tpu-v5p-8", price="16.8", spot="7.2"),  # again
]


def load_gcp(tmp_path: Path, rows: list[dict[str, str]] = GCP_ROWS, **kw: object) -> CatalogLoad:
    path = write(tmp_path / "gcp" / "vms.csv", GCP_HEADER, rows)
    return load_skypilot_catalog(path, as_of=AS_OF, **kw)  # type: ignore[arg-type]


def prices(load: CatalogLoad) -> dict[tuple[str, str, int, str, str], float]:
    return {
        (
            o.instance_type,
            o.accelerators.name if o.accelerators else "",
            o.accelerators.count if o.accelerators else 0,
            o.zone,
            o.market.value,
        ): o.price_per_hour
        for o in load.offerings
    }


def consistent(load: CatalogLoad) -> None:
    assert load.rows_read == load.rows_used + sum(load.rows_skipped.values())


# ---- GCP ---------------------------------------------------------------------------------------


def test_gcp_accelerators_are_composed_with_their_hosts(tmp_path: Path) -> None:
    load = load_gcp(tmp_path)
    got = prices(load)
    z = "us-central1-a"
    # attachable GPUs sit on the N1 host our live feed uses: 8 vCPUs per GPU
    assert got[("n1-standard-8", "T4", 1, z, "on_demand")] == pytest.approx(0.35 + 0.38)
    assert got[("n1-standard-8", "T4", 1, z, "spot")] == pytest.approx(0.16 + 0.08)
    assert got[("n1-standard-16", "T4", 2, z, "on_demand")] == pytest.approx(0.7 + 0.76)
    # A100 comes in its A2 machine; no spot price for the GPU -> no spot offering
    assert got[("a2-highgpu-1g", "A100", 1, z, "on_demand")] == pytest.approx(2.9 + 0.9)
    assert ("a2-highgpu-1g", "A100", 1, z, "spot") not in got
    # L4:1 fits every G2 host built for one L4: one offering per host present
    assert got[("g2-standard-4", "L4", 1, z, "on_demand")] == pytest.approx(0.56 + 0.2)
    assert got[("g2-standard-8", "L4", 1, z, "spot")] == pytest.approx(0.22 + 0.1)
    a100 = next(o for o in load.offerings if o.instance_type == "a2-highgpu-1g")
    assert (a100.vcpus, a100.memory_gb) == (12.0, 85.0)
    assert a100.accelerators is not None and a100.accelerators.memory_gb == 40
    # the V100's zone has no n1-standard-8 row
    assert not any(o.accelerators and o.accelerators.name == "V100" for o in load.offerings)
    assert load.rows_skipped["no_host"] == 1


def test_gcp_tpu_rows_placeholders_and_accounting(tmp_path: Path) -> None:
    load = load_gcp(tmp_path)
    tpu = [o for o in load.offerings if o.accelerators and o.accelerators.name == "tpu-v5p-8"]
    assert {o.market for o in tpu} == {MarketKind.ON_DEMAND, MarketKind.SPOT}
    assert len(tpu) == 2  # the repeated row is skipped, not offered twice
    od = next(o for o in tpu if o.market is MarketKind.ON_DEMAND)
    assert od.instance_type == "tpu-v5p-8" and od.price_per_hour == 16.8
    assert od.accelerators is not None and od.accelerators.count == 1
    assert od.accelerators.memory_gb == TPUS["v5p"].memory_gb
    assert (od.vcpus, od.memory_gb) == slice_host("v5p", 4)
    # 700.0 is a placeholder: v6e-8 has no offering at all, v6e-4 only on-demand
    assert not any(o.price_per_hour == PLACEHOLDER_PRICE for o in load.offerings)
    v6e = {(o.accelerators.name, o.market) for o in load.offerings if o.accelerators}
    assert ("tpu-v6e-4", MarketKind.ON_DEMAND) in v6e
    assert ("tpu-v6e-4", MarketKind.SPOT) not in v6e
    assert not any(name == "tpu-v6e-8" for name, _ in v6e)
    assert load.prices_ignored == {"placeholder_price": 3, "empty": 1}
    assert load.rows_skipped == {
        "gpu_host": 3,  # a2 and two g2 rows: half a machine, never offered alone
        "cpu_only": 3,  # e2 and the two N1 rows (still used as hosts)
        "no_host": 1,
        "placeholder_price": 1,
        "duplicate": 1,
    }
    assert load.rows_read == len(GCP_ROWS)
    consistent(load)
    assert load.cloud == "gcp" and load.source == tmp_path / "gcp" / "vms.csv"


def test_gcp_offerings_carry_file_provenance(tmp_path: Path) -> None:
    load = load_gcp(tmp_path)
    for o in load.offerings:
        assert o.price_source is PriceSource.FILE
        assert o.source_detail == str(tmp_path / "gcp" / "vms.csv")
        assert o.as_of == AS_OF and o.cloud == "gcp"
        if o.market is MarketKind.SPOT:
            assert o.interruption_rate == DEFAULT_SPOT_INTERRUPTION_RATE
            assert o.interruption_source is InterruptionSource.CONFIGURED
        else:
            assert o.interruption_rate == 0 and o.interruption_source is InterruptionSource.NONE


def test_unknown_accelerators_are_kept_and_counted(tmp_path: Path) -> None:
    load = load_gcp(tmp_path)
    p4 = [o for o in load.offerings if o.accelerators and o.accelerators.name == "P4"]
    assert len(p4) == 2 and all(o.instance_type == "n1-standard-8" for o in p4)
    assert p4[0].accelerators is not None and p4[0].accelerators.memory_gb == 8.0  # GpuInfo
    assert load.unknown_accelerators == {"P4": 1}
    dropped = load_gcp(tmp_path, include_unknown=False)
    assert not any(o.accelerators and o.accelerators.name == "P4" for o in dropped.offerings)
    assert dropped.rows_skipped["unknown_accelerator"] == 1
    consistent(dropped)


def test_unknown_tpu_generation_is_skipped_and_named(tmp_path: Path) -> None:
    rows = [gcp_row(acc="tpu-v9x-8", count="1", info="tpu-v9x-8", price="9", spot="3")]
    load = load_gcp(tmp_path, rows)
    assert load.offerings == []
    assert load.rows_skipped == {"unknown_accelerator": 1}
    assert load.unknown_accelerators == {"tpu-v9x-8": 1}


def test_include_cpu_offers_machines_but_never_gpu_hosts(tmp_path: Path) -> None:
    load = load_gcp(tmp_path, include_cpu=True)
    cpu = {
        (o.instance_type, o.market.value): o.price_per_hour
        for o in load.offerings
        if o.accelerators is None
    }
    assert cpu == {
        ("n1-standard-8", "on_demand"): 0.38,
        ("n1-standard-8", "spot"): 0.08,
        ("n1-standard-16", "on_demand"): 0.76,
        ("n1-standard-16", "spot"): 0.16,
        ("e2-standard-4", "on_demand"): 0.13,
        ("e2-standard-4", "spot"): 0.04,
    }
    assert "cpu_only" not in load.rows_skipped
    consistent(load)


def test_column_order_comes_from_the_header(tmp_path: Path) -> None:
    """The same rows with the columns in another order give the same offerings."""
    base = load_gcp(tmp_path)
    shuffled = write(tmp_path / "other" / "gcp.csv", list(reversed(GCP_HEADER)), GCP_ROWS)
    other = load_skypilot_catalog(shuffled, as_of=AS_OF)

    def key(o: Offering) -> str:
        return o.model_dump_json(exclude={"source_detail"})

    assert sorted(map(key, other.offerings)) == sorted(map(key, base.offerings))
    assert other.rows_skipped == base.rows_skipped


# ---- AWS ---------------------------------------------------------------------------------------

AWS_ROWS = [
    aws_row("p4d.24xlarge", "A100", "8", "96.0", "1152.0", gpu_info(40960, "A100"), "32.77", "9.8"),
    aws_row(
        "p4de.24xlarge", "A100-80GB", "8", "96.0", "1152.0", gpu_info(81920, "A100"), "40.96", ""
    ),
    aws_row(
        "g5.xlarge",
        "A10G",
        "1.0",
        "4.0",
        "16.0",
        gpu_info(22888, "A10G"),
        "1.006",
        "0.4",
        zone="use1-az2",
    ),
    aws_row(
        "inf2.xlarge",
        "Inferentia2",
        "1",
        "4.0",
        "16.0",
        gpu_info(32768, "Inferentia2"),
        "0.76",
        "0.2",
    ),
    aws_row("g6f.large", "L4", "0.125", "2.0", "8.0", gpu_info(2861, "L4"), "0.2", "0.1"),
    aws_row("m5.large", "", "", "2.0", "8.0", "", "0.096", "0.04"),
    aws_row(
        "p3.2xlarge",
        "V100",
        "1",
        "8.0",
        "61.0",
        "",
        "3.06",
        "0.9",
        region="eu-west-1",
        zone="euw1-az1",
    ),
]


def test_aws_rows_are_whole_machines(tmp_path: Path) -> None:
    path = write(tmp_path / "vms.csv", AWS_HEADER, AWS_ROWS)
    seen: list[tuple[str, str]] = []

    def rate(region: str, itype: str) -> tuple[float, InterruptionSource]:
        seen.append((region, itype))
        return 0.01, InterruptionSource.PUBLISHED_BUCKET

    load = load_skypilot_catalog(path, as_of=AS_OF, spot_rate=rate)
    assert load.cloud == "aws"  # from the instance type names; the path says nothing
    got = prices(load)
    assert got[("p4d.24xlarge", "A100", 8, "use1-az1", "on_demand")] == 32.77
    assert got[("p4d.24xlarge", "A100", 8, "use1-az1", "spot")] == 9.8
    assert got[("p4de.24xlarge", "A100-80GB", 8, "use1-az1", "on_demand")] == 40.96
    assert ("p4de.24xlarge", "A100-80GB", 8, "use1-az1", "spot") not in got
    assert got[("g5.xlarge", "A10G", 1, "use1-az2", "spot")] == 0.4
    assert got[("p3.2xlarge", "V100", 1, "euw1-az1", "on_demand")] == 3.06
    by_type = {o.instance_type: o for o in load.offerings}
    # known GPUs take our table's memory (as the live AWS feed does), not EC2's MiB
    assert by_type["g5.xlarge"].accelerators.memory_gb == GPUS["a10g"].memory_gb  # type: ignore[union-attr]
    # an unknown accelerator keeps its name, with the memory GpuInfo gives
    assert by_type["inf2.xlarge"].accelerators.name == "Inferentia2"  # type: ignore[union-attr]
    assert by_type["inf2.xlarge"].accelerators.memory_gb == 32.0  # type: ignore[union-attr]
    assert (by_type["p4d.24xlarge"].vcpus, by_type["p4d.24xlarge"].memory_gb) == (96, 1152)
    assert "g6f.large" not in by_type and "m5.large" not in by_type
    assert load.rows_skipped == {"bad_row": 1, "cpu_only": 1}  # a fractional GPU, a CPU
    assert load.unknown_accelerators == {"Inferentia2": 1}
    assert load.prices_ignored == {"empty": 1}
    consistent(load)
    spot = [o for o in load.offerings if o.market is MarketKind.SPOT]
    assert all(o.interruption_rate == 0.01 for o in spot)
    assert sorted(seen) == sorted({(o.region, o.instance_type) for o in spot})


def test_aws_default_spot_rates_come_from_the_spot_advisor(tmp_path: Path) -> None:
    path = write(tmp_path / "aws" / "vms.csv", AWS_HEADER, AWS_ROWS)
    load = load_skypilot_catalog(path, as_of=AS_OF)
    table = load_spot_advisor()
    for o in load.offerings:
        if o.market is MarketKind.SPOT:
            rate, why, _ = table.rate(o.region, o.instance_type)
            assert (o.interruption_rate, o.interruption_source) == (rate, why)
            assert o.interruption_rate > 0


def test_gpu_info_memory_tells_a100_variants_apart(tmp_path: Path) -> None:
    rows = [
        aws_row("p4de.24xlarge", "A100", "8", "96", "1152", gpu_info(81920, "A100"), "40", "12"),
        aws_row("p3dn.24xlarge", "V100", "8", "96", "768", gpu_info(32768, "V100"), "31", "9"),
    ]
    load = load_skypilot_catalog(write(tmp_path / "x.csv", AWS_HEADER, rows), as_of=AS_OF)
    names = {o.instance_type: o.accelerators.name for o in load.offerings if o.accelerators}
    assert names == {"p4de.24xlarge": "A100-80GB", "p3dn.24xlarge": "V100-32GB"}


def test_gpu_info_parsing() -> None:
    assert gpu_memory_mib(gpu_info(16384)) == 16384
    assert gpu_memory_mib('{"Gpus": [{"MemoryInfo": {"SizeInMiB": 24576}}]}') == 24576
    assert gpu_memory_mib(gpu_info(81920, "H100").replace("}]}", "}], 'Total': 1}")) == 81920
    for junk in (
        "",
        "tpu-v5p-8",
        "{not a dict",
        "{'Gpus': []}",
        "{'Gpus': [{}]}",
        "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 'x'}}]}",
        "{'Gpus': 3}",
        "{'Gpus': [{'MemoryInfo': {'SizeInMiB': 0}}]}",
        "{__import__('os')}",
    ):
        assert gpu_memory_mib(junk) is None, junk


# ---- cloud and time --------------------------------------------------------------------------


def test_cloud_detection() -> None:
    assert cloud_from_instance_type("p5.48xlarge") == "aws"
    assert cloud_from_instance_type("n1-standard-8") == "gcp"
    assert cloud_from_instance_type("") == "gcp"  # GCP's accelerator-only rows
    assert cloud_from_instance_type("weird") is None
    assert cloud_from_path(Path("/x/catalogs/v7/aws/vms.csv")) == "aws"
    assert cloud_from_path(Path("/tmp/gcp_vms.csv")) == "gcp"
    assert cloud_from_path(Path("/tmp/vms.csv")) is None
    assert cloud_from_path(Path("/home/aws/catalogs/vms.csv")) is None


def test_cloud_from_path_when_names_do_not_tell(tmp_path: Path) -> None:
    rows = [aws_row("weird", "A100", "1", "8", "64", "", "3", "1")]
    with pytest.raises(CatalogError, match="line 2: cannot tell the cloud"):
        load_skypilot_catalog(write(tmp_path / "vms.csv", AWS_HEADER, rows), as_of=AS_OF)
    load = load_skypilot_catalog(write(tmp_path / "aws" / "vms.csv", AWS_HEADER, rows))
    assert load.cloud == "aws" and len(load.offerings) == 2
    given = load_skypilot_catalog(tmp_path / "vms.csv", cloud="AWS", as_of=AS_OF)
    assert given.cloud == "aws"
    with pytest.raises(ValueError, match="azure"):
        load_skypilot_catalog(tmp_path / "vms.csv", cloud="azure")


def test_as_of_defaults_to_the_file_mtime(tmp_path: Path) -> None:
    path = write(tmp_path / "gcp" / "vms.csv", GCP_HEADER, GCP_ROWS)
    stamp = datetime(2026, 4, 2, 6, 30, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    load = load_skypilot_catalog(path)
    assert load.as_of == datetime(2026, 4, 2, 6, 30, tzinfo=UTC)
    assert {o.as_of for o in load.offerings} == {load.as_of}
    naive = load_skypilot_catalog(path, as_of=datetime(2026, 1, 1))
    assert naive.as_of == datetime(2026, 1, 1, tzinfo=UTC)


# ---- malformed files -------------------------------------------------------------------------


def test_missing_columns_name_the_file_and_columns(tmp_path: Path) -> None:
    header = [c for c in GCP_HEADER if c not in ("Price", "SpotPrice")]
    path = tmp_path / "vms.csv"
    path.write_text(",".join(header) + "\nn1-standard-8,8,30,,,,us-central1,us-central1-a\n")
    with pytest.raises(CatalogError) as err:
        load_skypilot_catalog(path)
    assert (
        str(err.value) == f"{path}: line 1: missing column(s) Price, SpotPrice "
        "(not a SkyPilot vms.csv header)"
    )
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("Price", "abc", "Price"),
        ("SpotPrice", "1,2", "SpotPrice"),
        ("Price", "-0.5", "Price"),
        ("vCPUs", "eight", "vCPUs"),
        ("AcceleratorCount", "x", "AcceleratorCount"),
    ],
)
def test_bad_cells_name_file_line_and_column(
    tmp_path: Path, field: str, value: str, column: str
) -> None:
    rows = [
        gcp_row("n1-standard-8", "8", "30", price="0.38", spot="0.08"),
        gcp_row("n1-standard-8", "8", "30", "T4", "1", zone="us-central1-b", price="1", spot="1"),
    ]
    rows[1][field] = value
    path = write(tmp_path / "vms.csv", GCP_HEADER, rows)
    with pytest.raises(CatalogError) as err:
        load_skypilot_catalog(path)
    message = str(err.value)
    assert message.startswith(f"{path}: line 3: column {column}: ")
    assert repr(value) in message and "\n" not in message


def test_structural_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CatalogError, match=r"empty\.csv: line 1: empty file"):
        load_skypilot_catalog(empty)
    short = tmp_path / "short.csv"
    short.write_text(",".join(GCP_HEADER) + "\n\nn1-standard-8,8,30\n")
    with pytest.raises(CatalogError, match=r"short\.csv: line 3: 3 fields, the header has 10"):
        load_skypilot_catalog(short)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(",".join(GCP_HEADER).encode() + b"\n\xff\xfe,\x00\n")
    with pytest.raises(CatalogError, match=r"binary\.csv: line \d+: not UTF-8"):
        load_skypilot_catalog(binary)
    with pytest.raises(CatalogError, match=r"nowhere\.csv: cannot read"):
        load_skypilot_catalog(tmp_path / "nowhere.csv")


def test_header_only_file_is_an_empty_catalog(tmp_path: Path) -> None:
    path = write(tmp_path / "gcp" / "vms.csv", GCP_HEADER, [])
    load = load_skypilot_catalog(path, as_of=AS_OF)
    assert (load.cloud, load.offerings, load.rows_read) == ("gcp", [], 0)


# ---- the real catalog ------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_GCP.is_file(), reason=f"{REAL_GCP} not present")
def test_real_gcp_catalog() -> None:
    load = load_skypilot_catalog(REAL_GCP)
    consistent(load)
    assert load.rows_read > 30_000 and load.cloud == "gcp"
    assert 0 < len(load.offerings) <= 2 * load.rows_read
    # every row gives at most two offerings, except L4:1, which fits five G2 hosts
    per_row_max = 2 * (
        load.rows_used
        + 4
        * sum(
            1
            for o in load.offerings
            if o.accelerators and (o.accelerators.name, o.accelerators.count) == ("L4", 1)
        )
    )
    assert len(load.offerings) <= per_row_max
    markets = Counter(o.market for o in load.offerings)
    assert markets[MarketKind.ON_DEMAND] > 1000 and markets[MarketKind.SPOT] > 1000
    assert len({o.zone for o in load.offerings}) > 50
    assert len({o.region for o in load.offerings}) > 20
    names = {o.accelerators.name for o in load.offerings if o.accelerators}
    assert {"A100", "A100-80GB", "H100", "L4", "T4", "V100"} <= names
    assert any(n.startswith("tpu-v5p-") for n in names)
    assert any(n.startswith("tpu-v6e-") for n in names)
    assert not any(o.price_per_hour == PLACEHOLDER_PRICE for o in load.offerings)
    assert load.prices_ignored.get("placeholder_price", 0) > 0
    assert load.rows_skipped["cpu_only"] > 20_000
    assert all(o.accelerators is not None for o in load.offerings)
    assert all(o.price_source is PriceSource.FILE for o in load.offerings)
    # a pool is offered once: the file's repeated rows are not repeated offerings
    pools = Counter(
        (o.pool, o.accelerators.name, o.accelerators.count)  # type: ignore[union-attr]
        for o in load.offerings
    )
    assert max(pools.values()) == 1
    # an on-demand GPU offering costs more than its host alone: the GPU price was added
    hosts = {
        (o.zone, o.instance_type): o.price_per_hour
        for o in load_skypilot_catalog(REAL_GCP, include_cpu=True).offerings
        if o.accelerators is None and o.market is MarketKind.ON_DEMAND
    }
    t4 = [
        o
        for o in load.offerings
        if o.accelerators and o.accelerators.name == "T4" and o.market is MarketKind.ON_DEMAND
    ]
    assert t4 and all(o.price_per_hour > hosts[(o.zone, o.instance_type)] for o in t4)
