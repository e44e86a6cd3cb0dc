"""The figures in bench/results.json, typed: what bench/render.py reads to write the page.

`BenchResults.from_json` takes the whole file (as bench/__main__.py writes it); each record below
reads one part of it with its own `from_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

NAIVE_LOAD = "naive (item per event)"  # bench/aggregate_load.py: NAIVE

Json = Mapping[str, Any]
T = TypeVar("T")
U = TypeVar("U")


# One record per part of bench/results.json, holding what the page shows of it. Numbers keep their
# JSON type (a few are printed as they are, and a count must read `2`, not `2.0`). A field the page
# reads only in some runs is read with a default, so older or partial results still render.


@dataclass(frozen=True)
class Variants(Generic[T]):
    """One figure for our code, for the naive baseline (bench/naive.py) and at the physical limit."""

    ours: T
    naive: T
    limit: T

    @classmethod
    def from_json(cls, data: Json, parse: Callable[[Json], T]) -> Variants[T]:
        return cls(ours=parse(data["ours"]), naive=parse(data["naive"]), limit=parse(data["limit"]))

    def map(self, figure: Callable[[T], U]) -> Variants[U]:
        return Variants(ours=figure(self.ours), naive=figure(self.naive), limit=figure(self.limit))

    def labelled(self) -> tuple[tuple[str, T], ...]:
        return (("Ours", self.ours), ("Naive baseline", self.naive), ("Limit", self.limit))


@dataclass(frozen=True)
class CountedCost:
    """What a client sent and the capacity units it cost (bench/capacity.py's Cost, as saved)."""

    requests: Mapping[str, float]  # by operation; fractional when scaled per 100 records
    total_requests: float
    write_requests: float
    read_requests: float
    write_units: float
    read_units: float

    @classmethod
    def from_json(cls, data: Json) -> CountedCost:
        return cls(
            requests=dict(data["requests"]),
            total_requests=data["total_requests"],
            write_requests=data["write_requests"],
            read_requests=data["read_requests"],
            write_units=data["write_units"],
            read_units=data["read_units"],
        )


@dataclass(frozen=True)
class CommandScenario:
    """One command on one history (bench/command_cost.py)."""

    scenario_id: str
    label: str
    note: str
    commit_bytes: int
    compressed_commit_bytes: int
    cost: Variants[CountedCost]

    @classmethod
    def from_json(cls, data: Json) -> CommandScenario:
        return cls(
            scenario_id=data["id"],
            label=data["label"],
            note=data.get("note") or "",
            commit_bytes=data["commit_bytes"],
            compressed_commit_bytes=data["compressed_commit_bytes"],
            cost=Variants.from_json(data, CountedCost.from_json),
        )


@dataclass(frozen=True)
class CommandCosts:
    snapshot_every: int
    scenarios: tuple[CommandScenario, ...]

    @classmethod
    def from_json(cls, data: Json) -> CommandCosts:
        return cls(
            snapshot_every=data["snapshot_every"],
            scenarios=tuple(CommandScenario.from_json(scenario) for scenario in data["scenarios"]),
        )

    def scenario(self, scenario_id: str) -> CommandScenario:
        return {scenario.scenario_id: scenario for scenario in self.scenarios}[scenario_id]


@dataclass(frozen=True)
class AggregateLoad:
    """One cold load of an aggregate (bench/aggregate_load.py)."""

    events: int  # the stream's length
    snapshots: str  # how the load used snapshots ("no", "newest", ...), or NAIVE_LOAD
    requests: Mapping[str, int]
    total_requests: int
    bytes_read: int
    read_units: float
    state_bytes: int  # the limit reads the state alone: the size of its snapshot item
    limit_read_units: float
    snapshot_version: int  # where folding started; 0: from the first event
    events_folded: int
    milliseconds: float

    @classmethod
    def from_json(cls, data: Json) -> AggregateLoad:
        return cls(
            events=data["events"],
            snapshots=data["snapshots"],
            requests=dict(data["requests"]),
            total_requests=data["total_requests"],
            bytes_read=data["bytes_read"],
            read_units=data["read_units"],
            state_bytes=data["state_bytes"],
            limit_read_units=data["limit_read_units"],
            snapshot_version=data["snapshot_version"],
            events_folded=data["events_folded"],
            milliseconds=data["milliseconds"],
        )

    @property
    def is_naive(self) -> bool:
        return self.snapshots.startswith("naive")

    @property
    def times_the_limit(self) -> float:
        # The floor keeps a state that costs no read unit from dividing by zero.
        return self.read_units / max(self.limit_read_units, 0.5)


@dataclass(frozen=True)
class AggregateLoads:
    snapshot_every: int
    loads: tuple[AggregateLoad, ...]

    @classmethod
    def from_json(cls, data: Json) -> AggregateLoads:
        return cls(
            snapshot_every=data["snapshot_every"],
            loads=tuple(AggregateLoad.from_json(load) for load in data["results"]),
        )

    @property
    def longest_stream(self) -> int:
        return max(load.events for load in self.loads)

    def stream_lengths(self) -> list[int]:
        return sorted({load.events for load in self.loads})

    def of_length(self, events: int) -> list[AggregateLoad]:
        return [load for load in self.loads if load.events == events]

    def by_snapshots(self, events: int) -> dict[str, AggregateLoad]:
        """The loads of the streams of that length, by how they used snapshots."""
        return {load.snapshots: load for load in self.of_length(events)}


@dataclass(frozen=True)
class Workload:
    orders: int
    customers: int
    products: int
    records: int  # stream records: one per commit
    events: int

    @classmethod
    def from_json(cls, data: Json) -> Workload:
        return cls(
            orders=data["orders"],
            customers=data["customers"],
            products=data["products"],
            records=data["records"],
            events=data["events"],
        )


@dataclass(frozen=True)
class LargestPartition:
    """The largest partition a projection had written at the end of the run (for a summary kept by
    deltas, its shard rows; older runs: its contribution rows), and its source rows (one per order
    or product stream; 0 in older runs and for the order view)."""

    rows: int = 0
    size_bytes: int = 0
    source_rows: int = 0
    source_bytes: int = 0

    @classmethod
    def from_json(cls, data: Json) -> LargestPartition:
        return cls(
            rows=data.get("largest_rows", 0),
            size_bytes=data.get("largest_bytes", 0),
            source_rows=data.get("source_rows", 0),
            source_bytes=data.get("source_bytes", 0),
        )


@dataclass(frozen=True)
class ProjectionCost:
    """One projection's cost per 100 records, and its first and last full batch."""

    cost: Variants[CountedCost]
    first_batch: CountedCost
    last_batch: CountedCost

    @classmethod
    def from_json(cls, data: Json) -> ProjectionCost:
        return cls(
            cost=Variants.from_json(data, CountedCost.from_json),
            first_batch=CountedCost.from_json(data["first_batch"]),
            last_batch=CountedCost.from_json(data["last_batch"]),
        )


@dataclass(frozen=True)
class ProjectorWork:
    """What the projector does for every read model (the lists of parked streams, its heartbeat),
    per 100 records, and how long it keeps what it reads."""

    cost: CountedCost
    control_ttl_seconds: float  # each read model's control row
    parked_ttl_seconds: float  # each read model's list of parked streams
    heartbeat_seconds: float

    @classmethod
    def from_json(cls, data: Json) -> ProjectorWork:
        return cls(
            cost=CountedCost.from_json(data["ours"]),
            control_ttl_seconds=data["control_ttl_seconds"],
            parked_ttl_seconds=data["parked_ttl_seconds"],
            heartbeat_seconds=data["heartbeat_seconds"],
        )


@dataclass(frozen=True)
class ProjectionDelivery:
    """The workload's stream delivered by one projector to every read model, in one batch size
    (bench/projection_cost.py)."""

    workload: Workload
    batch_size: int
    batch_gap_seconds: float | None  # the bench clock's time between batches (None: older runs)
    per_100_records: Variants[CountedCost]  # every read model and the projector's shared work
    projections: Mapping[str, ProjectionCost]  # by read model, in registration order
    projector: ProjectorWork | None  # None in older runs (a poller per read model)
    largest_partitions: Mapping[str, LargestPartition]

    @classmethod
    def from_json(cls, data: Json) -> ProjectionDelivery:
        projector = data.get("projector")
        return cls(
            workload=Workload.from_json(data["workload"]),
            batch_size=data["batch_size"],
            batch_gap_seconds=data.get("batch_gap_seconds"),
            per_100_records=Variants.from_json(data["per_100_records"], CountedCost.from_json),
            projections={name: ProjectionCost.from_json(cost) for name, cost in data["projections"].items()},
            projector=ProjectorWork.from_json(projector) if projector else None,
            largest_partitions={
                name: LargestPartition.from_json(shape) for name, shape in data["partitions"].items()
            },
        )

    def largest_partition(self, projection: str) -> LargestPartition:
        return self.largest_partitions.get(projection, LargestPartition())


@dataclass(frozen=True)
class GrowthPoint:
    """What a batch of one more order cost a summary's read model at the `order`-th order of the day."""

    order: int
    cost: CountedCost
    partition_rows: int  # the summary's partition after the order: its shard rows
    partition_bytes: int

    @classmethod
    def from_json(cls, data: Json) -> GrowthPoint:
        return cls(
            order=data["order"],
            cost=CountedCost.from_json(data["cost"]),
            partition_rows=data["partition_rows"],
            partition_bytes=data["partition_bytes"],
        )


@dataclass(frozen=True)
class SummaryGrowth:
    """One day filled with orders that all name one hot product; the read units of one more order
    at the 100th and at the last order (bench/projection_cost.py: summary_growth)."""

    orders: int
    rows: Mapping[str, str]  # read model -> the row measured, in words
    points: Mapping[str, tuple[GrowthPoint, ...]]  # read model -> first point, last point
    fill_seconds: Mapping[str, float]  # read model -> filling the day in memory (empty in older runs)

    @classmethod
    def from_json(cls, data: Json) -> SummaryGrowth:
        return cls(
            orders=data["orders"],
            rows=dict(data["rows"]),
            points={
                name: tuple(GrowthPoint.from_json(point) for point in points)
                for name, points in data["points"].items()
            },
            fill_seconds=dict(data.get("fill_seconds", {})),
        )

    def first(self, projection: str) -> GrowthPoint:
        return self.points[projection][0]

    def last(self, projection: str) -> GrowthPoint:
        return self.points[projection][-1]

    def ratio(self, projection: str) -> float:
        """Read units at the last order ÷ at the first (1 is flat, the target; nothing read at
        either point is flat too)."""
        return _growth(self.first(projection).cost.read_units, self.last(projection).cost.read_units)

    @property
    def flat(self) -> bool:
        """The read units of one more order are the same at the last order as at the first, for
        every row measured: what the target asks."""
        return all(
            self.last(name).cost.read_units == self.first(name).cost.read_units for name in self.points
        )


def _growth(first: float, last: float) -> float:
    """last ÷ first: the same figure twice (zero included) is 1; a first figure under half a unit
    counts as half a unit."""
    return 1.0 if last == first else last / max(first, 0.5)


@dataclass(frozen=True)
class ProjectionCosts:
    busy: ProjectionDelivery  # the backlog in full batches
    quiet: ProjectionDelivery  # one record per batch
    summary_growth: SummaryGrowth | None  # None in older runs
    summary_shards: Mapping[str, int]  # read model kept by deltas -> shard rows per summary (older: empty)

    @classmethod
    def from_json(cls, data: Json) -> ProjectionCosts:
        growth = data.get("summary_growth")
        return cls(
            busy=ProjectionDelivery.from_json(data["busy"]),
            quiet=ProjectionDelivery.from_json(data["quiet"]),
            summary_growth=SummaryGrowth.from_json(growth) if growth else None,
            summary_shards=dict(data.get("summary_shards", {})),
        )

    @property
    def read_models(self) -> tuple[str, ...]:
        """The read models the projector fed, in registration order."""
        return tuple(self.busy.projections)


@dataclass(frozen=True)
class ImportTime:
    """`python -X importtime` of one handler module (or of boto3 alone), median of the runs."""

    median_ms: float
    by_package_ms: Mapping[str, float]  # self time by package, largest first

    @classmethod
    def from_json(cls, data: Json) -> ImportTime:
        return cls(median_ms=data["median_ms"], by_package_ms=dict(data["by_package_ms"]))


@dataclass(frozen=True)
class FunctionSize:
    code_unzipped: int  # the function's own package
    total_unzipped: int  # with both layers
    total_zipped: int

    @classmethod
    def from_json(cls, data: Json) -> FunctionSize:
        return cls(
            code_unzipped=data["code"]["unzipped"],
            total_unzipped=data["total_unzipped"],
            total_zipped=data["total_zipped"],
        )


@dataclass(frozen=True)
class DeploymentSizes:
    functions: Mapping[str, FunctionSize]
    core_layer_unzipped: int
    deps_layer_unzipped: int | None  # None when the layer could not be built (offline)
    deps_layer_distributions: tuple[str, ...]
    note: str  # why there is no dependencies layer
    lambda_unzipped_limit: int
    auth_layer_unzipped: int | None = None  # the authorizer's own layer; None in older runs

    @classmethod
    def from_json(cls, data: Json) -> DeploymentSizes:
        deps_layer = data.get("deps_layer")
        auth_layer = data.get("auth_layer")
        return cls(
            functions={name: FunctionSize.from_json(size) for name, size in data["functions"].items()},
            core_layer_unzipped=data["core_layer"]["unzipped"],
            deps_layer_unzipped=deps_layer["unzipped"] if deps_layer else None,
            deps_layer_distributions=tuple(data.get("deps_layer_distributions", ())),
            note=data.get("note", ""),
            lambda_unzipped_limit=data["lambda_unzipped_limit"],
            auth_layer_unzipped=auth_layer["unzipped"] if auth_layer else None,
        )


@dataclass(frozen=True)
class ColdStarts:
    """bench/cold_start.py: handler imports by package, and what each function deploys."""

    runs: int
    python: str  # the interpreter that measured, e.g. "3.13.0"
    runtime: str  # the functions' Lambda runtime, e.g. "python3.13"
    matches_runtime: bool  # the interpreter is of the runtime's minor version
    bytecode: str  # the tag of the bytecode the assets carry, e.g. "cpython-313"
    machine: str  # platform.machine() of the measuring machine (Lambda runs arm64)
    as_deployed: Mapping[str, ImportTime]  # by function package, and "boto3"
    without_bytecode: Mapping[str, ImportTime]
    sizes: DeploymentSizes

    @classmethod
    def from_json(cls, data: Json) -> ColdStarts:
        return cls(
            runs=data["runs"],
            python=data["python"],
            runtime=data["runtime"],
            matches_runtime=data["matches_runtime"],
            bytecode=data["bytecode"],
            machine=data["machine"],
            as_deployed={name: ImportTime.from_json(t) for name, t in data["as_deployed"].items()},
            without_bytecode={name: ImportTime.from_json(t) for name, t in data["without_bytecode"].items()},
            sizes=DeploymentSizes.from_json(data["sizes"]),
        )

    @property
    def functions(self) -> list[str]:
        return [name for name in self.as_deployed if name != "boto3"]

    def ratio(self, package: str) -> float:
        return self.as_deployed[package].median_ms / self.boto3_ms

    @property
    def interpreter_text(self) -> str:
        if self.matches_runtime:
            return f"Python {self.python}, the runtime's minor version ({self.runtime})"
        return f"Python {self.python}, not the runtime's ({self.runtime}): none on this machine"

    @property
    def machine_text(self) -> str:
        if self.machine in ("aarch64", "arm64"):
            return f"{self.machine}, as Lambda runs the functions"
        return f"{self.machine} with the same distributions built for it (Lambda runs arm64)"

    @property
    def boto3_ms(self) -> float:
        """The limit: a function that imports nothing but boto3."""
        return self.as_deployed["boto3"].median_ms


@dataclass(frozen=True)
class Throughput:
    per_second: float
    latency_p50_ms: float

    @classmethod
    def from_json(cls, data: Json) -> Throughput:
        return cls(per_second=data["per_second"], latency_p50_ms=data["latency_p50_ms"])


@dataclass(frozen=True)
class CpuPerRequest:
    """CPU per command (or per raw put), from a phase's start until the server was idle again."""

    moto_ms: float  # the server's main process, where moto serves every AWS request
    total_ms: float  # every process of the server, and the clients

    @classmethod
    def from_json(cls, data: Json) -> CpuPerRequest:
        return cls(moto_ms=data["moto_ms"], total_ms=data["total_ms"])


@dataclass(frozen=True)
class LoadLevel:
    """N clients on the local server, and raw conditional puts from as many threads beside it."""

    clients: int
    ours: Throughput
    raw_puts: Throughput
    ratio: float  # ours ÷ raw puts
    cpu_ours: CpuPerRequest | None = None  # None in older runs
    cpu_raw_puts: CpuPerRequest | None = None

    @classmethod
    def from_json(cls, data: Json) -> LoadLevel:
        cpu = data.get("cpu")
        return cls(
            clients=data["clients"],
            ours=Throughput.from_json(data["ours"]),
            raw_puts=Throughput.from_json(data["raw_puts"]),
            ratio=data["ratio"],
            cpu_ours=CpuPerRequest.from_json(cpu["ours"]) if cpu else None,
            cpu_raw_puts=CpuPerRequest.from_json(cpu["raw_puts"]) if cpu else None,
        )

    def sustained_ceiling(self, cores: int) -> float | None:
        """Commands/s the run's costs allow once the readers keep up: moto's process has one core
        (one GIL), everything together has the machine's cores; the first to run out sets the pace."""
        if self.cpu_ours is None or not self.cpu_ours.moto_ms or not self.cpu_ours.total_ms:
            return None
        return min(1000 / self.cpu_ours.moto_ms, 1000 * cores / self.cpu_ours.total_ms)


@dataclass(frozen=True)
class ServerRun:
    levels: tuple[LoadLevel, ...]  # fewest clients first

    @classmethod
    def from_json(cls, data: Json) -> ServerRun:
        return cls(levels=tuple(LoadLevel.from_json(level) for level in data["levels"]))

    def level(self, clients: int) -> LoadLevel:
        """The level with that many clients; the last one run if there is none."""
        return next((level for level in self.levels if level.clients == clients), self.levels[-1])


@dataclass(frozen=True)
class ProjectionLag:
    orders: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    poll_interval_ms: float  # how often the client looked for the order
    target_p99_ms: float | None  # None in older runs
    orders_placed_before: int | None  # by the run's earlier phases, that day (None in older runs)

    @classmethod
    def from_json(cls, data: Json) -> ProjectionLag:
        return cls(
            orders=data["orders"],
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            mean_ms=data["mean_ms"],
            poll_interval_ms=data["poll_interval_ms"],
            target_p99_ms=data.get("target_p99_ms"),
            orders_placed_before=data.get("orders_placed_before"),
        )

    @property
    def meets_target(self) -> bool:
        return self.target_p99_ms is not None and self.p99_ms <= self.target_p99_ms


@dataclass(frozen=True)
class IdleCpu:
    """CPU the server's process used over a stretch with nothing happening (bench/e2e.py)."""

    seconds: float
    cpu_seconds: float
    percent_of_one_core: float
    target_percent: float

    @classmethod
    def from_json(cls, data: Json) -> IdleCpu:
        return cls(
            seconds=data["seconds"],
            cpu_seconds=data["cpu_seconds"],
            percent_of_one_core=data["percent_of_one_core"],
            target_percent=data["target_percent"],
        )

    @property
    def meets_target(self) -> bool:
        return self.percent_of_one_core < self.target_percent


@dataclass(frozen=True)
class PollerTiming:
    """The local projector poller's waits (orders_local/projection_workers.py), as the run used them."""

    poll_interval_ms: float  # between polls while records come
    idle_poll_max_ms: float  # what empty polls stretch the wait to

    @classmethod
    def from_json(cls, data: Json) -> PollerTiming:
        return cls(poll_interval_ms=data["poll_interval_ms"], idle_poll_max_ms=data["idle_poll_max_ms"])


@dataclass(frozen=True)
class EndToEnd:
    """bench/e2e.py: the local HTTP server's throughput, its idle CPU, and the projections' lag."""

    command_mix: str
    command_path: ServerRun  # the server without its stream poller
    with_projections: ServerRun  # `orders serve`, poller and all
    lag: ProjectionLag
    idle_cpu: Mapping[str, IdleCpu]  # "with_projections" and "command_path"; empty in older runs
    poller: PollerTiming | None  # None in older runs
    cores: int | None = None  # of the machine that ran it; None in older runs

    @classmethod
    def from_json(cls, data: Json) -> EndToEnd:
        poller = data.get("poller")
        return cls(
            command_mix=data["command_mix"],
            command_path=ServerRun.from_json(data["command_path"]),
            with_projections=ServerRun.from_json(data["with_projections"]),
            lag=ProjectionLag.from_json(data["lag"]),
            idle_cpu={
                key: IdleCpu.from_json(data[key]["idle_cpu"])
                for key in ("with_projections", "command_path")
                if "idle_cpu" in data[key]
            },
            poller=PollerTiming.from_json(poller) if poller else None,
            cores=data.get("cores"),
        )


@dataclass(frozen=True)
class RebuildFloor:
    """What the rebuild's row writes alone allow, at the raw put rate measured after the run."""

    rows_written: int
    raw_puts_per_second: float
    events_per_second: float

    @classmethod
    def from_json(cls, data: Json) -> RebuildFloor:
        return cls(
            rows_written=data["rows_written"],
            raw_puts_per_second=data["raw_puts_per_second"],
            events_per_second=data["limit_events_per_second"],
        )


@dataclass(frozen=True)
class RebuildThroughput:
    """bench/rebuild_throughput.py: one read model rebuilt through the workflow on moto."""

    projection: str
    events: int
    commits: int
    seconds: float
    events_per_second: float
    phases_reached_at_seconds: Mapping[str, float]
    floor: RebuildFloor | None  # None when the raw put rate was not measured
    shuffle_memory: ShuffleMemory | None = None  # None in results from before it was measured

    @classmethod
    def from_json(cls, data: Json) -> RebuildThroughput:
        return cls(
            projection=data["projection"],
            events=data["events"],
            commits=data["commits"],
            seconds=data["seconds"],
            events_per_second=data["events_per_second"],
            phases_reached_at_seconds=dict(data["phases_reached_at_seconds"]),
            floor=RebuildFloor.from_json(data) if data.get("limit_events_per_second") else None,
            shuffle_memory=ShuffleMemory.from_json(data["shuffle_memory"])
            if "shuffle_memory" in data
            else None,
        )


@dataclass(frozen=True)
class ShuffleFile:
    commits: int
    file_bytes: int
    uncompressed_bytes: int
    peak_bytes: int


@dataclass(frozen=True)
class ShuffleMemory:
    """The shuffle step's peak memory (tracemalloc) on export files of two sizes."""

    buffer_bytes: int
    files: tuple[ShuffleFile, ...]

    @classmethod
    def from_json(cls, data: Json) -> ShuffleMemory:
        return cls(
            buffer_bytes=data["buffer_bytes"],
            files=tuple(
                ShuffleFile(f["commits"], f["file_bytes"], f["uncompressed_bytes"], f["peak_bytes"])
                for f in data["files"]
            ),
        )


@dataclass(frozen=True)
class Prices:
    """bench/cost_model.py's PRICES."""

    basis: str
    lambda_per_gb_second_arm64: float
    lambda_per_million_requests: float
    http_api_per_million_requests: float
    dynamodb_per_million_write_units: float
    dynamodb_per_million_read_units: float
    dynamodb_storage_per_gb_month: float

    @classmethod
    def from_json(cls, data: Json) -> Prices:
        return cls(
            basis=data["basis"],
            lambda_per_gb_second_arm64=data["lambda_per_gb_second_arm64"],
            lambda_per_million_requests=data["lambda_per_million_requests"],
            http_api_per_million_requests=data["http_api_per_million_requests"],
            dynamodb_per_million_write_units=data["dynamodb_per_million_write_units"],
            dynamodb_per_million_read_units=data["dynamodb_per_million_read_units"],
            dynamodb_storage_per_gb_month=data["dynamodb_storage_per_gb_month"],
        )


@dataclass(frozen=True)
class Assumptions:
    """bench/cost_model.py's ASSUMPTIONS."""

    memory_gb: float
    invocation_ms: float
    dynamodb_request_ms: float
    projection_record_ms: float
    command_mix: Mapping[str, float]  # scenario id → share of the commands
    partition_read_units_per_second: int

    @classmethod
    def from_json(cls, data: Json) -> Assumptions:
        return cls(
            memory_gb=data["memory_gb"],
            invocation_ms=data["invocation_ms"],
            dynamodb_request_ms=data["dynamodb_request_ms"],
            projection_record_ms=data["projection_record_ms"],
            command_mix=dict(data["command_mix"]),
            partition_read_units_per_second=data["partition_read_units_per_second"],
        )


@dataclass(frozen=True)
class Dollars:
    lambda_functions: float
    dynamodb_writes: float
    dynamodb_reads: float
    api_gateway: float  # 0 for projections: no API in front of them

    @classmethod
    def from_json(cls, data: Json) -> Dollars:
        return cls(
            lambda_functions=data["lambda"],
            dynamodb_writes=data["dynamodb_writes"],
            dynamodb_reads=data["dynamodb_reads"],
            api_gateway=data.get("api_gateway", 0.0),
        )


@dataclass(frozen=True)
class CommandBill:
    """A million commands of the assumed mix, for one variant."""

    requests_per_command: float
    write_units_per_command: float
    read_units_per_command: float
    dollars: Dollars
    total_dollars: float

    @classmethod
    def from_json(cls, data: Json) -> CommandBill:
        return cls(
            requests_per_command=data["requests_per_command"],
            write_units_per_command=data["write_units_per_command"],
            read_units_per_command=data["read_units_per_command"],
            dollars=Dollars.from_json(data["dollars"]),
            total_dollars=data["total_dollars"],
        )


@dataclass(frozen=True)
class EventBill:
    """A million projected events, for one variant."""

    requests_per_event: float
    dollars: Dollars
    total_dollars: float

    @classmethod
    def from_json(cls, data: Json) -> EventBill:
        return cls(
            requests_per_event=data["requests_per_event"],
            dollars=Dollars.from_json(data["dollars"]),
            total_dollars=data["total_dollars"],
        )


@dataclass(frozen=True)
class EventBills:
    """A million projected events in one batch size (busy or quiet)."""

    invocations: int
    bills: Variants[EventBill]

    @classmethod
    def from_json(cls, data: Json) -> EventBills:
        return cls(invocations=data["invocations"], bills=Variants.from_json(data, EventBill.from_json))


@dataclass(frozen=True)
class HotStream:
    """How fast one stream, and the day's sales partition, can go (bench/cost_model.py)."""

    partition_write_units_per_second: int
    write_units_per_warm_command: float
    commands_per_second_per_stream_by_partition: int
    round_trip_ms: float
    commands_per_second_per_stream_by_round_trip: int
    # bench/cost_model.py still estimates when re-reading the day's partition would hit its read
    # limit; summaries kept by deltas re-read nothing, so the page no longer shows these two.
    sales_bytes_per_order: int
    batches_per_second: int
    sales_orders_per_day_at_partition_read_limit: int

    @classmethod
    def from_json(cls, data: Json) -> HotStream:
        return cls(
            partition_write_units_per_second=data["partition_write_units_per_second"],
            write_units_per_warm_command=data["write_units_per_warm_command"],
            commands_per_second_per_stream_by_partition=data["commands_per_second_per_stream_by_partition"],
            round_trip_ms=data["round_trip_ms"],
            commands_per_second_per_stream_by_round_trip=data["commands_per_second_per_stream_by_round_trip"],
            sales_bytes_per_order=data["sales_bytes_per_order"],
            batches_per_second=data["batches_per_second"],
            sales_orders_per_day_at_partition_read_limit=data["sales_orders_per_day_at_partition_read_limit"],
        )


@dataclass(frozen=True)
class OnPaper:
    """bench/cost_model.py: the measured counts priced on AWS."""

    prices: Prices
    assumptions: Assumptions
    per_million_commands: Variants[CommandBill]
    per_million_busy_events: EventBills
    per_million_quiet_events: EventBills
    hot_stream: HotStream

    @classmethod
    def from_json(cls, data: Json) -> OnPaper:
        events = data["per_million_events"]
        return cls(
            prices=Prices.from_json(data["prices"]),
            assumptions=Assumptions.from_json(data["assumptions"]),
            per_million_commands=Variants.from_json(data["per_million_commands"], CommandBill.from_json),
            per_million_busy_events=EventBills.from_json(events["busy"]),
            per_million_quiet_events=EventBills.from_json(events["quiet"]),
            hot_stream=HotStream.from_json(data["hot_stream"]),
        )


@dataclass(frozen=True)
class Environment:
    """The machine and the versions the run used; "?" for what an older run did not record."""

    cpus: str
    platform: str
    machine: str
    python: str
    moto: str
    boto3: str
    powertools: str
    pydantic: str

    @classmethod
    def from_json(cls, data: Json) -> Environment:
        def recorded(key: str) -> str:
            return str(data.get(key, "?"))

        return cls(
            cpus=recorded("cpus"),
            platform=recorded("platform"),
            machine=recorded("machine"),
            python=recorded("python"),
            moto=recorded("moto"),
            boto3=recorded("boto3"),
            powertools=recorded("aws-lambda-powertools"),
            pydantic=recorded("pydantic"),
        )


@dataclass(frozen=True)
class RunMeta:
    """How and where the run was made (bench/__main__.py)."""

    command: str
    generated_at: str
    git_commit: str
    environment: Environment
    seconds: float | None  # the whole run's; None after a partial run (--only)
    small: bool  # the CI run: its figures are not the published ones
    section_seconds: Mapping[str, float]
    load_average_after: Mapping[str, float]  # after each section

    @classmethod
    def from_json(cls, data: Json) -> RunMeta:
        return cls(
            command=data.get("command", "make bench"),
            generated_at=data.get("generated_at", "?"),
            git_commit=data.get("git_commit", "?"),
            environment=Environment.from_json(data.get("environment", {})),
            seconds=data.get("seconds"),
            small=data.get("mode") == "small",
            section_seconds=dict(data.get("section_seconds", {})),
            load_average_after=dict(data.get("load_average_after", {})),
        )


@dataclass(frozen=True)
class BenchResults:
    """bench/results.json. A section is None when it was not run or failed (see `failures`)."""

    meta: RunMeta
    commands: CommandCosts | None
    aggregate_load: AggregateLoads | None
    projections: ProjectionCosts | None
    cold_start: ColdStarts | None
    e2e: EndToEnd | None
    rebuild: RebuildThroughput | None
    on_paper: OnPaper | None  # computed from commands and projections when both ran
    failures: Mapping[str, str]  # section key → the error it failed with

    @classmethod
    def from_json(cls, results: Json) -> BenchResults:
        def measured(key: str, parse: Callable[[Json], T]) -> T | None:
            return parse(results[key]) if key in results and "error" not in results[key] else None

        return cls(
            meta=RunMeta.from_json(results.get("meta", {})),
            commands=measured("commands", CommandCosts.from_json),
            aggregate_load=measured("aggregate_load", AggregateLoads.from_json),
            projections=measured("projections", ProjectionCosts.from_json),
            cold_start=measured("cold_start", ColdStarts.from_json),
            e2e=measured("e2e", EndToEnd.from_json),
            rebuild=measured("rebuild", RebuildThroughput.from_json),
            on_paper=OnPaper.from_json(results["on_paper"]) if "on_paper" in results else None,
            failures={
                key: section["error"]
                for key, section in results.items()
                if isinstance(section, Mapping) and "error" in section
            },
        )

    def without_figures(self, key: str) -> str:
        """What a section says instead of its figures."""
        if key not in self.failures:
            return "_Not measured in this run._\n"
        return f"_This section failed in this run: {self.failures[key]}._\n"
