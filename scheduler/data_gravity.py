"""What moving a job's data costs on a placement: inputs in, outputs out, checkpoints.

Data has gravity: a 50 TB dataset in s3 us-east-1 makes every placement outside that region
pay to pull it. Each move is priced on the network price table with its monthly tiers
shared per meter (moves leaving through the same meter climb the same tiers), and each is
kept with its figures so a plan can say exactly what the data cost.

An input read several times is pulled once and kept in the placement's region when that
is cheaper than pulling it on every read (it always is, unless storage were dearer than
egress, which no cloud's list prices make it). Checkpoints written to a bucket in another
region pay egress on every write, and after each preemption the latest one is read back.
A job without a checkpoint URI keeps checkpoints beside itself: no data moves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from jobs.spec import Checkpoint, Data, DataLocation
from providers.network import Location, NetworkPrices, Route, UnknownRegionError


@dataclass(frozen=True, slots=True)
class DataMove:
    what: str  # 'input s3://...', 'output ...', 'checkpoint writes ...'
    src: str
    gb: float
    kind: str  # the network price kind, e.g. 'inter-region aws na->eu'
    usd: float
    times: float = 1.0  # how often the move happens (expected)


@dataclass(frozen=True, slots=True)
class DataCost:
    moves: tuple[DataMove, ...] = ()
    usd: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "usd", sum(m.usd for m in self.moves))


NO_DATA = DataCost()


def data_location(d: DataLocation) -> Location:
    if d.cloud == "local":
        return Location(cloud="local")
    return Location(cloud=d.cloud, region=d.region or "")


def checkpoint_location(checkpoint: Checkpoint | None) -> Location | None:
    """Where checkpoints are kept, when the spec says: a bucket with its region. A file://
    path is on the machine the job runs on, so it moves nothing."""
    if checkpoint is None or not checkpoint.uri or checkpoint.size_gb <= 0:
        return None
    scheme = checkpoint.uri.split("://", 1)[0]
    if scheme == "file" or not checkpoint.region:
        return None
    return Location(cloud={"s3": "aws", "gs": "gcp"}[scheme], region=checkpoint.region)  # type: ignore[arg-type]


class DataPricer:
    """Prices a job's data moves for many placements, caching what depends on the region only.

    Checkpoints are priced where ``checkpoint_at`` says, else where the spec's checkpoint
    URI and region say; with neither they stay beside the job and move nothing.
    ``restore_from`` is where the checkpoint to resume from is (after a preemption):
    reading it once into the new placement is one more move.
    """

    def __init__(
        self,
        data: Data,
        network: NetworkPrices,
        *,
        checkpoint: Checkpoint | None = None,
        checkpoint_at: Location | None = None,
        restore_from: Location | None = None,
    ) -> None:
        self.data = data
        self.network = network
        self.checkpoint = checkpoint
        self.checkpoint_at = checkpoint_at or checkpoint_location(checkpoint)
        self.restore_from = restore_from
        self._io: dict[tuple[str, str], tuple[tuple[DataMove, ...], dict[str, float]]] = {}
        self._routes: dict[tuple[Location, Location], Route] = {}
        self._priced: dict[tuple[str, str, float, float], DataCost] = {}
        self._inputs = [(d, data_location(d)) for d in data.inputs if d.size_gb > 0]
        self._outputs = [(d, data_location(d)) for d in data.outputs if d.size_gb > 0]
        size = checkpoint.size_gb if checkpoint is not None else 0.0
        self._restores = [(restore_from, size)] if restore_from is not None and size > 0 else []

    @property
    def moves_anything(self) -> bool:
        return bool(self._inputs or self._outputs or self.checkpoint_at or self._restores)

    def _route(self, src: Location, dst: Location) -> Route:
        key = (src, dst)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = self.network.route(src, dst)
        return route

    def _io_moves(self, cloud: str, region: str) -> tuple[tuple[DataMove, ...], dict[str, float]]:
        key = (cloud, region)
        cached = self._io.get(key)
        if cached is not None:
            return cached
        where = _where(cloud, region)
        used: dict[str, float] = defaultdict(float)
        moves: list[DataMove] = []
        for d, src in self._inputs:
            moves.append(self._move(f"input {d.uri}", src, where, d.size_gb, 1, used))
        for d, dst in self._outputs:
            moves.append(self._move(f"output {d.uri}", where, dst, d.size_gb, 1, used))
        for src, gb in self._restores:
            moves.append(self._move("checkpoint restore (last attempt)", src, where, gb, 1, used))
        result = (tuple(m for m in moves if m.gb > 0), dict(used))
        self._io[key] = result
        return result

    def _move(
        self,
        what: str,
        src: Location,
        dst: Location,
        gb_each: float,
        times: float,
        used: dict[str, float],
    ) -> DataMove:
        gb = gb_each * times
        route = self._route(src, dst)
        meter = route.meter or ""
        usd = route.rate.cost(gb, used[meter]) if gb > 0 and meter else 0.0
        if meter:
            used[meter] += gb
        return DataMove(what=what, src=str(src), gb=gb, kind=route.kind, usd=usd, times=times)

    def price(
        self, cloud: str, region: str, *, checkpoint_writes: float, migrations: float
    ) -> DataCost:
        """Every move a run in ``cloud``/``region`` causes; UnknownRegionError when the
        network table cannot price a route it needs."""
        if not self.moves_anything:
            return NO_DATA
        key = (cloud, region, checkpoint_writes, migrations)
        cost = self._priced.get(key)
        if cost is None:
            cost = self._priced[key] = self._price(cloud, region, checkpoint_writes, migrations)
        return cost

    def _price(
        self, cloud: str, region: str, checkpoint_writes: float, migrations: float
    ) -> DataCost:
        io, used_io = self._io_moves(cloud, region)
        at = self.checkpoint_at
        if at is None or self.checkpoint is None:
            return DataCost(moves=io)
        used = defaultdict(float, used_io)
        where = _where(cloud, region)
        size = self.checkpoint.size_gb
        extra = [
            self._move(
                f"checkpoint writes {self.checkpoint.uri}", where, at, size, checkpoint_writes, used
            ),
            self._move(
                f"checkpoint reads {self.checkpoint.uri}", at, where, size, migrations, used
            ),
        ]
        return DataCost(moves=io + tuple(m for m in extra if m.gb > 0))


def _where(cloud: str, region: str) -> Location:
    if cloud == "local":
        return Location(cloud="local")
    return Location(cloud=cloud, region=region)  # type: ignore[arg-type]


__all__ = ["DataCost", "DataMove", "DataPricer", "UnknownRegionError", "data_location"]
