"""SkyPilot-format catalogs (``vms.csv``) as offerings: prices from a file the user brings.

SkyPilot publishes one ``vms.csv`` per cloud (and others, e.g. anycloud-sh/catalog,
refresh theirs daily). The columns are named but their order differs per cloud, so every
column is found by its header name. One row is one machine shape in one zone with an
on-demand ``Price`` and a ``SpotPrice``; each known price becomes one offering, an empty
price none (a market the zone does not sell).

What the files say, and what we make of it:

- **AWS** rows are whole instance types with their GPUs (``p4d.24xlarge``, A100, 8). Each
  becomes offerings as it stands. ``AvailabilityZone`` there is the zone *ID*
  (``use1-az1``), which is the same for every account; it is kept as the zone.
- **GCP** sells most GPUs apart from the VM. Accelerator rows have an empty
  ``InstanceType`` and price the accelerator alone, and the host rows (``a2-highgpu-1g``,
  ``n1-standard-8``) price the VM without it. A GPU row is composed with its host in the
  same zone, as SkyPilot itself does when it lists accelerators: A100, A100-80GB, H100,
  H100-MEGA, H200, B200 and L4 with the machine type built for them (``a2-highgpu-1g`` for
  A100:1; all five ``g2-standard-*`` hosts of L4:1, one offering each), the attachable ones
  (T4, V100, P100, P4, K80, ...) with the N1 host our live GCP feed and launcher use,
  ``n1-standard-{8 x count}`` (8 vCPUs per GPU, inside every GPU's vCPU limit), rather
  than SkyPilot's cheapest N1 with enough cores. That keeps the instance type and pool of a
  catalog price identical to the live price for the same machine, and ``instance_type``
  stays a real machine type the launcher can ask for (the GPU is in ``accelerators``). A
  composed price is accelerator + host, per market; a market is missing if either part
  is. A GPU row whose host is not sold in its zone is skipped as ``no_host``. Host rows of
  the GPU families (a2/a3/a4/g2/ct) are never offerings on their own: they price half a
  machine that cannot be launched without its GPUs.
- **TPU** rows (``tpu-v5p-8``, count 1) price the whole TPU VM slice; the instance type is
  the slice name, and vCPUs/RAM are the slice's hosts (providers/gcp_tpu.py), as the live
  TPU feed has them.
- ``700.0`` is SkyPilot's placeholder for "no price published" (some TPU zones): such a
  price is unknown, so that market has no offering, and is counted.
- Accelerator names become ours (jobs/accelerators.py); a name we do not know (P4,
  Inferentia, T4g) is kept as written with the memory ``GpuInfo`` gives, and counted.
  Known accelerators take our table's memory, not ``GpuInfo``'s MiB, so a catalog offering
  and a live one agree on "24 GB" for an A10G that EC2 reports as 22,888 MiB; ``GpuInfo``
  (a Python-literal dict) still tells A100 from A100-80GB when a name does not.
- Rows without accelerators are skipped unless ``include_cpu``: we schedule accelerator
  work. Rows that cannot be offerings (fractional GPUs, no zone, no vCPUs) are counted as
  ``bad_row``; a file we cannot read as a catalog (missing columns, a price that is not a
  number) raises CatalogError naming the file, line and column.
- A file cut short (a download or copy that stopped) is refused, not read in part. SkyPilot's
  files (written by pandas) end with a line break, so a last line without one was cut: it
  may hold a shortened price that still parses (``0.09`` of ``0.09962``, ``0.`` of
  ``0.47``) or too few fields. Dropping that row quietly would still load a catalog that
  replaces the snapshot for its cloud with what is left of it; CatalogError names the file
  and the line instead. A line with another number of fields than the header anywhere
  else is an error too; a file cut exactly at a line break cannot be told from a shorter one.

Every row read is either used (gave at least one offering) or skipped for exactly one
reason, so ``rows_read == rows_used + sum(rows_skipped.values())``.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from jobs.accelerators import GPUS, AcceleratorKind, parse_accelerator
from providers.aws_prices import canonical_gpu
from providers.gcp_prices import n1_host
from providers.gcp_tpu import TPU_HOSTS, slice_host
from providers.offering import (
    InterruptionSource,
    MarketKind,
    OfferedAccelerator,
    Offering,
    PriceSource,
)
from providers.skypilot_format import (
    CLOUDS,
    DEDICATED_HOST_TYPES,
    DEDICATED_NAMES,
    GCP_ACCELERATOR_FAMILIES,
    GCP_DEDICATED_HOSTS,
    PLACEHOLDER_PRICE,
    REQUIRED_COLUMNS,
    SpotRate,
    cloud_from_instance_type,
    cloud_from_path,
    default_spot_rate,
    gpu_memory_mib,
)


class CatalogError(ValueError):
    """A file that is not a readable SkyPilot catalog; the message names file, line, column."""


class CatalogLoad(BaseModel):
    """The offerings of one catalog file, and an account of every row that gave none."""

    model_config = ConfigDict(frozen=True)

    source: Path = Field(description="The file read.")
    cloud: str = Field(description="'aws' or 'gcp'.")
    as_of: datetime = Field(description="When the prices were observed (given, or file mtime).")
    offerings: list[Offering]
    rows_read: int = Field(description="Data rows in the file (blank lines not counted).")
    rows_used: int = Field(description="Rows that gave at least one offering.")
    rows_skipped: dict[str, int] = Field(
        default_factory=dict,
        description="Rows that gave none, by reason: cpu_only, gpu_host, placeholder_price, "
        "no_price, unknown_accelerator, no_host, duplicate, bad_row.",
    )
    prices_ignored: dict[str, int] = Field(
        default_factory=dict,
        description="Single market prices not turned into offerings: placeholder_price (700.0) "
        "and empty, counted for rows that otherwise would have given offerings.",
    )
    unknown_accelerators: dict[str, int] = Field(
        default_factory=dict,
        description="Accelerator names not in jobs/accelerators.py -> rows carrying them.",
    )


# ---- the reader --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accel:
    offered: OfferedAccelerator
    known: bool
    tpu_host: tuple[float, float] | None = None  # (vCPUs, GB) of a TPU slice's hosts


@dataclass(frozen=True)
class _Host:
    vcpus: float
    memory_gb: float
    prices: tuple[float | None, float | None]  # on-demand, spot
    placeholders: tuple[bool, bool]


@dataclass(frozen=True)
class _Pending:
    """A GCP accelerator-only row, kept until every host row has been read."""

    accel: _Accel
    region: str
    zone: str
    prices: tuple[float | None, float | None]
    placeholders: tuple[bool, bool]


_MARKETS = (MarketKind.ON_DEMAND, MarketKind.SPOT)


def _sum(accelerator: float | None, host: float | None) -> float | None:
    return None if accelerator is None or host is None else round(accelerator + host, 6)


class _Reader:
    """One pass over the rows; GCP accelerator rows are composed with hosts at the end."""

    def __init__(
        self,
        source: Path,
        columns: dict[str, int],
        *,
        cloud: str | None,
        cloud_hint: str | None,
        as_of: datetime,
        include_cpu: bool,
        include_unknown: bool,
        spot_rate: SpotRate | None,
    ) -> None:
        self.source = source
        self.detail = str(source)
        self.columns = columns
        self.cloud = cloud
        self.cloud_hint = cloud_hint
        self.as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        self.include_cpu = include_cpu
        self.include_unknown = include_unknown
        self._spot_rate = spot_rate
        self._rates: dict[tuple[str, str], tuple[float, InterruptionSource]] = {}
        self.offerings: list[Offering] = []
        self.rows_read = 0
        self.rows_used = 0
        self.skipped: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.unknown: Counter[str] = Counter()
        self._accels: dict[tuple[str, str, str], _Accel | str] = {}
        self._seen: set[tuple[str, str, int, str]] = set()
        self._hosts: dict[tuple[str, str], _Host] = {}
        self._pending: list[_Pending] = []

    # -- cells -------------------------------------------------------------------------------

    def _fail(self, line: int, message: str) -> CatalogError:
        return CatalogError(f"{self.source}: line {line}: {message}")

    def _number(self, line: int, column: str, text: str) -> float | None:
        """A finite, non-negative number, None for an empty cell; CatalogError otherwise."""
        text = text.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise self._fail(line, f"column {column}: {text[:40]!r} is not a number") from None
        if math.isnan(value):
            return None  # pandas writes a missing value as NaN in some versions
        if math.isinf(value) or value < 0:
            raise self._fail(line, f"column {column}: {text[:40]!r} is not a price or size")
        return value

    def _price(self, line: int, column: str, text: str) -> tuple[float | None, bool]:
        value = self._number(line, column, text)
        if value == PLACEHOLDER_PRICE:
            return None, True
        return value, False

    def _accel(self, line: int, name: str, count_text: str, gpu_info: str) -> _Accel | str:
        """The accelerator of a row, or the reason the row cannot be offered."""
        key = (name, count_text, gpu_info)
        cached = self._accels.get(key)
        if cached is None:
            cached = self._resolve(line, name, count_text, gpu_info)
            self._accels[key] = cached
        return cached

    def _resolve(self, line: int, name: str, count_text: str, gpu_info: str) -> _Accel | str:
        count_value = self._number(line, "AcceleratorCount", count_text)
        if count_value is None or count_value < 1 or not count_value.is_integer():
            return "bad_row"  # no count, or a fraction of a GPU (AWS g6f)
        count = int(count_value)
        if name.lower().startswith("tpu-"):
            try:
                req = parse_accelerator(name)
            except ValueError:
                return "unknown_accelerator"
            generation = req.name.split("-")[1]
            if req.kind is not AcceleratorKind.TPU or generation not in TPU_HOSTS:
                return "unknown_accelerator"
            if count != 1 or req.tpu_chips is None:
                return "bad_row"
            offered = OfferedAccelerator(name=req.name, count=1, memory_gb=req.memory_gb)
            return _Accel(offered, True, slice_host(generation, req.tpu_chips))
        memory_mib = gpu_memory_mib(gpu_info) if gpu_info else None
        canonical = canonical_gpu(name, memory_mib or 0.0)
        if canonical is not None:
            memory = GPUS[canonical.lower()].memory_gb
            return _Accel(OfferedAccelerator(name=canonical, count=count, memory_gb=memory), True)
        if not self.include_unknown:
            return "unknown_accelerator"
        memory = round(memory_mib / 1024, 3) if memory_mib else 0.0
        return _Accel(OfferedAccelerator(name=name, count=count, memory_gb=memory), False)

    def _rate(self, region: str, itype: str) -> tuple[float, InterruptionSource]:
        if self._spot_rate is None:
            self._spot_rate = default_spot_rate(self.cloud or "gcp")
        key = (region, itype)
        rate = self._rates.get(key)
        if rate is None:
            rate = self._rates[key] = self._spot_rate(region, itype)
        return rate

    # -- offerings ---------------------------------------------------------------------------

    def _emit(
        self,
        itype: str,
        accel: OfferedAccelerator | None,
        vcpus: float,
        memory_gb: float,
        region: str,
        zone: str,
        prices: tuple[float | None, float | None],
        placeholders: tuple[bool, bool],
    ) -> str | None:
        """Offerings for the markets that have a price; the skip reason if none has."""
        made = 0
        for market, price, placeholder in zip(_MARKETS, prices, placeholders, strict=True):
            if price is None:
                self.ignored["placeholder_price" if placeholder else "empty"] += 1
                continue
            spot = market is MarketKind.SPOT
            rate, why = self._rate(region, itype) if spot else (0.0, InterruptionSource.NONE)
            self.offerings.append(
                Offering(
                    cloud=self.cloud,
                    region=region,
                    zone=zone,
                    instance_type=itype,
                    accelerators=accel,
                    vcpus=vcpus,
                    memory_gb=memory_gb,
                    market=market,
                    price_per_hour=price,
                    interruption_rate=rate,
                    interruption_source=why,
                    as_of=self.as_of,
                    price_source=PriceSource.FILE,
                    source_detail=self.detail,
                )
            )
            made += 1
        if made:
            return None
        return "placeholder_price" if any(placeholders) else "no_price"

    def _count(self, reason: str | None) -> None:
        if reason is None:
            self.rows_used += 1
        else:
            self.skipped[reason] += 1

    # -- rows --------------------------------------------------------------------------------

    def row(self, line: int, cells: list[str]) -> None:
        """One data row, cells in header order (``self.columns`` says which is which)."""
        col = self.columns
        self.rows_read += 1
        itype = cells[col["InstanceType"]].strip()
        if self.cloud is None:
            self.cloud = cloud_from_instance_type(itype) or self.cloud_hint
            if self.cloud is None:
                raise self._fail(
                    line, f"cannot tell the cloud from instance type {itype[:40]!r}; pass cloud="
                )
        name = cells[col["AcceleratorName"]].strip()
        region = cells[col["Region"]].strip()
        zone = cells[col["AvailabilityZone"]].strip()
        od, od_placeholder = self._price(line, "Price", cells[col["Price"]])
        sp, sp_placeholder = self._price(line, "SpotPrice", cells[col["SpotPrice"]])
        prices, placeholders = (od, sp), (od_placeholder, sp_placeholder)
        gcp = self.cloud == "gcp"
        vcpus = memory = None
        if itype:
            vcpus = self._number(line, "vCPUs", cells[col["vCPUs"]])
            memory = self._number(line, "MemoryGiB", cells[col["MemoryGiB"]])
        if not region or not zone or not (itype or (gcp and name)):
            self._count("bad_row")
        elif not name:
            self._machine_row(itype, vcpus, memory, region, zone, prices, placeholders)
        else:
            count = cells[col["AcceleratorCount"]].strip()
            gpu_info = cells[col["GpuInfo"]] if "GpuInfo" in col else ""
            accel = self._accel(line, name, count, gpu_info)
            if accel == "unknown_accelerator" or (isinstance(accel, _Accel) and not accel.known):
                self.unknown[name] += 1
            if isinstance(accel, str):
                self._count(accel)
            elif self._duplicate(itype, accel.offered.name, accel.offered.count, zone):
                self._count("duplicate")
            elif itype:
                if not vcpus or not memory:
                    self._count("bad_row")
                else:
                    off = accel.offered
                    self._count(
                        self._emit(itype, off, vcpus, memory, region, zone, prices, placeholders)
                    )
            elif accel.tpu_host is not None:
                off, (tpu_vcpus, tpu_memory) = accel.offered, accel.tpu_host
                self._count(
                    self._emit(
                        off.name, off, tpu_vcpus, tpu_memory, region, zone, prices, placeholders
                    )
                )
            else:
                self._pending.append(_Pending(accel, region, zone, prices, placeholders))

    def _machine_row(
        self,
        itype: str,
        vcpus: float | None,
        memory: float | None,
        region: str,
        zone: str,
        prices: tuple[float | None, float | None],
        placeholders: tuple[bool, bool],
    ) -> None:
        """A row without accelerators: a GCP host to compose with, and maybe a CPU offering."""
        gcp = self.cloud == "gcp"
        if gcp and vcpus and memory and self._is_host(itype):
            self._hosts.setdefault((zone, itype), _Host(vcpus, memory, prices, placeholders))
        if gcp and itype.startswith(GCP_ACCELERATOR_FAMILIES):
            self._count("gpu_host")
        elif not self.include_cpu:
            self._count("cpu_only")
        elif not vcpus or not memory:
            self._count("bad_row")
        elif self._duplicate(itype, "", 0, zone):
            self._count("duplicate")
        else:
            self._count(self._emit(itype, None, vcpus, memory, region, zone, prices, placeholders))

    @staticmethod
    def _is_host(itype: str) -> bool:
        return itype in DEDICATED_HOST_TYPES or itype.startswith("n1-standard-")

    def _duplicate(self, itype: str, accel: str, count: int, zone: str) -> bool:
        key = (itype, accel, count, zone)
        if key in self._seen:
            return True
        self._seen.add(key)
        return False

    def compose(self) -> None:
        """Each GCP accelerator row with its host(s) in the same zone."""
        for p in self._pending:
            offered = p.accel.offered
            if offered.name in DEDICATED_NAMES:
                hosts = GCP_DEDICATED_HOSTS.get((offered.name, offered.count), ())
            else:
                hosts = (n1_host(offered.count),)
            found = [(h, self._hosts[(p.zone, h)]) for h in hosts if (p.zone, h) in self._hosts]
            if not found:
                self._count("no_host")
                continue
            reasons = []
            for itype, host in found:
                od = _sum(p.prices[0], host.prices[0])
                sp = _sum(p.prices[1], host.prices[1])
                marks = (
                    p.placeholders[0] or host.placeholders[0],
                    p.placeholders[1] or host.placeholders[1],
                )
                reasons.append(
                    self._emit(
                        itype,
                        offered,
                        host.vcpus,
                        host.memory_gb,
                        p.region,
                        p.zone,
                        (od, sp),
                        marks,
                    )
                )
            self._count(None if None in reasons else reasons[0])
        self._pending.clear()

    def result(self) -> CatalogLoad:
        return CatalogLoad(
            source=self.source,
            cloud=self.cloud or "unknown",
            as_of=self.as_of,
            offerings=self.offerings,
            rows_read=self.rows_read,
            rows_used=self.rows_used,
            rows_skipped=dict(self.skipped),
            prices_ignored=dict(self.ignored),
            unknown_accelerators=dict(self.unknown),
        )


# ---- entry points ------------------------------------------------------------------------------


class _Lines:
    """The lines being read, and whether the last one ended with a line break."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.ended = False
        self.saw_break = False  # lines given without breaks (a list) are not checked

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.saw_break = self.saw_break or self.ended
        self.ended = line.endswith(("\n", "\r"))
        return line

    @property
    def cut_short(self) -> bool:
        return self.saw_break and not self.ended


def read_catalog(
    lines: Iterable[str],
    source: Path,
    *,
    as_of: datetime,
    cloud: str | None = None,
    cloud_hint: str | None = None,
    include_cpu: bool = False,
    include_unknown: bool = True,
    spot_rate: SpotRate | None = None,
) -> CatalogLoad:
    """Read catalog text (an open file, or any lines). ``source`` names it in offerings and
    errors; ``cloud`` (else the first row's instance type, else ``cloud_hint``) says how to
    read the rows; ``spot_rate`` (else :func:`default_spot_rate`) rates spot offerings."""
    if cloud is not None:
        cloud = cloud.lower()
        if cloud not in CLOUDS:
            raise ValueError(f"cloud {cloud!r}: SkyPilot catalogs are read for {', '.join(CLOUDS)}")
    text = _Lines(lines)
    rows = csv.reader(text)
    try:
        header = next(rows, None)
        if header is None:
            raise CatalogError(f"{source}: line 1: empty file, expected a vms.csv header")
        columns = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CatalogError(
                f"{source}: line 1: missing column(s) {', '.join(missing)}"
                " (not a SkyPilot vms.csv header)"
            )
        reader = _Reader(
            source,
            columns,
            cloud=cloud,
            cloud_hint=cloud_hint,
            as_of=as_of,
            include_cpu=include_cpu,
            include_unknown=include_unknown,
            spot_rate=spot_rate,
        )
        width = len(header)
        for cells in rows:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            if text.cut_short:
                raise CatalogError(
                    f"{source}: line {rows.line_num}: the file ends inside this line"
                    " (cut short?); a complete vms.csv ends with a line break"
                )
            if len(cells) != width:
                raise CatalogError(
                    f"{source}: line {rows.line_num}: {len(cells)} fields, the header has {width}"
                )
            reader.row(rows.line_num, cells)
    except csv.Error as exc:
        raise CatalogError(f"{source}: line {rows.line_num}: not CSV: {exc}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"{source}: line {rows.line_num + 1}: not UTF-8 text") from None
    if reader.cloud is None:
        reader.cloud = cloud_hint
    reader.compose()
    return reader.result()


def load_skypilot_catalog(
    path: Path,
    cloud: str | None = None,
    as_of: datetime | None = None,
    *,
    include_cpu: bool = False,
    include_unknown: bool = True,
    spot_rate: SpotRate | None = None,
) -> CatalogLoad:
    """Offerings from a SkyPilot ``vms.csv`` (AWS or GCP) at ``path``.

    ``as_of`` defaults to the file's modification time: the catalog says nothing about
    when its prices were fetched, and the file's age is the best bound we have.
    ``cloud`` defaults to what the instance type names say (or the path, ``gcp/vms.csv``).
    """
    path = Path(path).expanduser().absolute()  # offerings outlive the working directory
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        if as_of is None:
            as_of = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, tz=UTC)
        return read_catalog(
            handle,
            path,
            as_of=as_of,
            cloud=cloud,
            cloud_hint=cloud_from_path(path),
            include_cpu=include_cpu,
            include_unknown=include_unknown,
            spot_rate=spot_rate,
        )
