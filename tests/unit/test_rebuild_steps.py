"""Every rebuild step survives Step Functions' retry after success, and a run that ends early (a
failure, an execution stopped or timed out, an operator's release) never undoes a switch."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from orders_core.projections.control import ControlStore, ProjectionControl
from orders_core.rebuild.endings import RunEndings
from orders_core.rebuild.steps import ExportNotFound, RunEnded
from tests.support.rebuilds import PROJECTION, RebuildWorld, twice


@pytest.fixture
def world() -> RebuildWorld:
    world = RebuildWorld()
    world.place_orders(5)
    world.start()
    return world


def test_each_step_called_again_after_success_answers_the_same_and_changes_nothing(
    world: RebuildWorld,
) -> None:
    rid, steps = world.rebuild_id, world.steps
    gen_1 = world.rows(1)

    # begin: the same plan, and no second claim (a second claim used to abandon the run)
    plan = twice(lambda: steps.begin(rid), world)
    assert (plan["generation"], plan["previous_generation"]) == (2, 1)
    assert plan["export_poll_limit"] == 120
    assert world.claim().building_rebuild_id == rid and world.claim().highest_generation == 2

    arn = world.export(plan)
    data = twice(lambda: steps.export_done(rid, arn), world)
    assert data["data_prefix"] == f"{plan['export_prefix']}/AWSDynamoDB/{arn.rsplit('/', 1)[1]}/data/"

    shuffled = [twice(partial(steps.shuffle, rid, key), world) for key in world.objects.list("rebuilds/")]
    assert sorted(c["commits"] for c in shuffled) == [0, 5]  # the manifest, then the data file
    for bucket in plan["buckets"]:
        twice(partial(steps.apply_bucket, rid, bucket), world)
    assert twice(lambda: steps.verify(rid), world) == {"files": 1, "commits": 5, "events": 15}
    world.deliver_marker()
    twice(lambda: steps.catch_up(rid), world)

    # switch: readers switch once; the retry finds them on the new generation and succeeds
    revision = world.claim().revision
    assert twice(lambda: steps.switch(rid), world) == {"active_generation": 2}
    assert (world.claim().active_generation, world.claim().revision) == (2, revision + 1)
    assert world.rows(2).keys() == {(f"2#{k[0].split('#', 1)[1]}", k[1]) for k in gen_1}

    # retire, one page at a time; its last call, again, finds nothing more to do
    answers = world.retire_all()
    assert answers[-1] == {"deleted_rows": answers[-1]["deleted_rows"], "more": False, "cursor": None}
    assert twice(lambda: steps.retire(rid, answers[-1]["cursor"]), world) == {
        "deleted_rows": 0,
        "more": False,
        "cursor": None,
    }
    run = world.run()
    assert (run.status, run.phase, run.error) == ("SUCCEEDED", "done", None)
    assert world.rows(1) == {} and len(world.rows(2)) == len(gen_1)
    assert world.objects.list(f"rebuilds/{rid}/") == []


def _filler(world: RebuildWorld, rows: int) -> None:
    """More rows in generation 1 than one deletion page evaluates."""
    for n in range(rows):
        world.table.put_next_version((f"1#filler-{n:05}", "view"), {}, version=1, expected=None)


def test_retire_deletes_page_by_page_and_ends_the_run_only_after_the_last(world: RebuildWorld) -> None:
    # Given an old generation of 2,500 rows (1,000 rows evaluated per page, one page per call)
    _filler(world, 2_495)
    world.run_until("switch")
    rid = world.rebuild_id

    first = world.steps.retire(rid)
    assert first["more"] and first["cursor"] and 0 < first["deleted_rows"] <= 1_000
    # Then the run is still retiring, its scratch files still there, readers on generation 2
    assert world.run().phase == "retiring" and world.objects.list(f"rebuilds/{rid}/")
    # A retried call with the same cursor goes on from there: nothing lost, nothing twice
    second = world.steps.retire(rid, first["cursor"])
    again = world.steps.retire(rid, first["cursor"])
    assert again["deleted_rows"] == 0 or again["cursor"] != second["cursor"]

    rest = [first, second]
    while rest[-1]["more"]:
        rest.append(world.steps.retire(rid, rest[-1]["cursor"]))
    assert len(rest) >= 3
    assert sum(a["deleted_rows"] for a in rest) + again["deleted_rows"] == 2_500
    assert world.rows(1) == {} and world.run().status == "SUCCEEDED"
    assert world.objects.list(f"rebuilds/{rid}/") == []


def test_retire_never_deletes_the_generation_readers_still_use(world: RebuildWorld) -> None:
    world.run_until("catch_up")
    with pytest.raises(LookupError, match="has not switched"):
        world.steps.retire(world.rebuild_id)
    assert world.rows(1)


def test_an_abandon_after_the_switch_is_a_success_and_readers_stay(world: RebuildWorld) -> None:
    # Given a run that switched readers, then failed while retiring
    _filler(world, 1_500)
    world.run_until("switch")
    assert world.steps.retire(world.rebuild_id)["more"]  # one page, then the Lambda times out
    gen_2 = world.rows(2)

    # When the workflow's Catch abandons it (twice: the abandon is retried too)
    ended = twice(
        lambda: world.steps.abandon(world.rebuild_id, "States.Timeout", "Task timed out after 900 s"), world
    )

    # Then the run succeeded, readers and their rows stay, and operators learn what was left
    run = world.run()
    assert (run.status, run.phase, run.error) == ("SUCCEEDED", "done", None)
    assert ended["status"] == "SUCCEEDED" and not ended["released"]
    assert world.claim().active_generation == 2 and world.rows(2) == gen_2
    note = run.details["retirement"]
    assert "generation 1" in note and "States.Timeout" in note and "harmless" in note


def test_retirement_failed_ends_the_run_succeeded_with_a_note(world: RebuildWorld) -> None:
    world.run_until("switch")
    cause = '{"errorType": "ReadStoreError", "errorMessage": "read store scan failed: Throttled"}'

    ended = twice(lambda: world.steps.retirement_failed(world.rebuild_id, "ReadStoreError", cause), world)

    run = world.run()
    assert (run.status, run.phase) == ("SUCCEEDED", "done")
    assert ended["retirement"] == run.details["retirement"]
    assert "ReadStoreError: read store scan failed: Throttled" in ended["retirement"]
    assert world.claim().active_generation == 2 and world.rows(1)  # left, as the note says


def test_a_retirement_that_completes_after_all_drops_the_note(world: RebuildWorld) -> None:
    world.run_until("switch")
    world.steps.retirement_failed(world.rebuild_id, "States.Timeout", "")
    # A retire still running when the execution timed out finishes later: the run is done already
    assert world.steps.retire(world.rebuild_id) == {"deleted_rows": 0, "more": False, "cursor": None}
    assert world.run().details["retirement"]


@pytest.mark.parametrize("status", ["ABORTED", "TIMED_OUT"])
def test_an_execution_that_stops_before_the_switch_releases_the_claim_and_the_partial_generation(
    world: RebuildWorld, status: str
) -> None:
    # Given a run stopped (or timed out) while its buckets were applied
    world.run_until("apply_bucket")
    assert world.rows(2)

    # When EventBridge reports its execution's end (and delivers the event twice)
    ended = twice(lambda: world.steps.abandon_execution(world.rebuild_id, status), world)

    # Then the run failed for that reason, the claim is released, the partial generation gone
    run = world.run()
    assert (run.status, run.phase, run.error) == ("FAILED", "failed", f"execution {status}")
    assert ended == {
        "rebuild_id": world.rebuild_id,
        "status": "FAILED",
        "released": True,
        "error": f"execution {status}",
    }
    assert world.claim() == ProjectionControl(
        PROJECTION, active_generation=1, highest_generation=2, revision=world.claim().revision
    )
    assert world.rows(2) == {} and world.rows(1)
    # and the next run claims a new generation (never 2 again)
    assert world.steps.begin(world.start("20261129T110000-customer-orders-next"))["generation"] == 3


def test_an_execution_that_ends_after_the_switch_leaves_readers_where_they_are(world: RebuildWorld) -> None:
    world.run_until("switch")
    ended = world.steps.abandon_execution(world.rebuild_id, "TIMED_OUT")
    assert ended["status"] == "SUCCEEDED"
    assert world.claim().active_generation == 2 and world.rows(2)


def test_executions_that_are_not_an_unfinished_run_change_nothing(world: RebuildWorld) -> None:
    world.run_until("catch_up")
    before = world.state()
    assert world.steps.abandon_execution(world.rebuild_id, "SUCCEEDED")["ignored"]
    assert world.steps.abandon_execution(world.rebuild_id, "RUNNING")["ignored"]
    # A Distributed Map's child execution, or another state machine's: no run by that name
    assert world.steps.abandon_execution("0f3c9a1e-child", "FAILED")["ignored"] == "no such rebuild"
    assert world.state() == before


def test_abandoning_a_run_that_has_failed_already_changes_nothing(world: RebuildWorld) -> None:
    world.run_until("verify")
    world.steps.abandon(world.rebuild_id, "VerificationFailed", "1 of 2 buckets were not applied")
    first = world.run()

    # The workflow's Abandon step is retried, then the execution's FAILED event arrives
    world.steps.abandon(world.rebuild_id, "VerificationFailed", "1 of 2 buckets were not applied")
    world.steps.abandon_execution(world.rebuild_id, "FAILED")

    assert world.run() == first
    assert first.error == "VerificationFailed: 1 of 2 buckets were not applied"


def test_a_begin_that_claims_while_its_run_is_abandoned_gives_the_claim_back(world: RebuildWorld) -> None:
    # Given the execution times out while begin claims: the abandon looks before the claim lands
    class AbandonedDuringTheClaim(ControlStore):
        def claim(self, name: str, rebuild_id: str) -> ProjectionControl:
            claimed = super().claim(name, rebuild_id)
            world.steps.abandon_execution(rebuild_id, "TIMED_OUT")
            return claimed

    steps = world.make_steps(AbandonedDuringTheClaim(world.control_store))

    # When begin goes on, then it gives the claim back and stops
    with pytest.raises(RunEnded):
        steps.begin(world.rebuild_id)
    assert world.claim().building_rebuild_id is None
    assert (world.run().status, world.run().error) == ("FAILED", "execution TIMED_OUT")
    # and a begin of an ended run claims nothing at all
    with pytest.raises(RunEnded):
        world.steps.begin(world.rebuild_id)
    assert world.claim().building_rebuild_id is None


def test_a_switch_that_wins_against_an_abandon_keeps_readers_and_their_rows(world: RebuildWorld) -> None:
    # Given an abandon that has marked the run (its first write) while the switch task still runs
    world.run_until("catch_up")
    world.runs.update(world.rebuild_id, lambda r: replace(r, phase="abandoning", error="execution TIMED_OUT"))
    world.steps.switch(world.rebuild_id)
    gen_2 = world.rows(2)

    # When the abandon goes on, then it finds readers on the new generation and keeps them
    ended = world.steps.abandon(world.rebuild_id, "States.Timeout", "")
    assert ended["status"] == "SUCCEEDED"
    assert world.claim().active_generation == 2 and world.rows(2) == gen_2
    assert world.run().error is None and world.run().details["retirement"]


def test_only_the_recorded_exports_files_are_read(world: RebuildWorld) -> None:
    # Given the export was requested twice (the request was retried): two exports under the prefix
    plan = world.steps.begin(world.rebuild_id)
    first, second = world.export(plan), world.export(plan)
    recorded = world.steps.export_done(world.rebuild_id, first)

    # When the other export is reported done too, then the first stays the one read
    assert world.steps.export_done(world.rebuild_id, second) == recorded
    counts = {key: world.steps.shuffle(world.rebuild_id, key) for key in world.objects.list("rebuilds/")}
    read = {key for key, c in counts.items() if c["commits"]}
    assert len(read) == 1 and next(iter(read)).startswith(recorded["data_prefix"])
    for bucket in plan["buckets"]:
        world.steps.apply_bucket(world.rebuild_id, bucket)
    assert world.steps.verify(world.rebuild_id)["files"] == 1


def test_an_export_in_a_folder_not_named_by_its_arn_is_found_if_it_is_the_only_one(
    world: RebuildWorld,
) -> None:
    # moto writes <prefix>/AWSDynamoDB/<a fresh uuid>/data/<uuid>.gz, unrelated to its ARN
    plan = world.steps.begin(world.rebuild_id)
    arn = world.export(plan, folder="3b0c6d4e-0000-4000-8000-000000000001")
    assert world.steps.export_done(world.rebuild_id, arn)["data_prefix"] == (
        f"{plan['export_prefix']}/AWSDynamoDB/3b0c6d4e-0000-4000-8000-000000000001/data/"
    )

    other = RebuildWorld(rebuild_id="20261129T120000-customer-orders-two")
    other.place_orders(1)
    other.start()
    plan = other.steps.begin(other.rebuild_id)
    arn = other.export(plan, folder="one")
    other.export(plan, folder="two")
    with pytest.raises(ExportNotFound):
        other.steps.export_done(other.rebuild_id, arn)


def test_a_shuffle_before_the_export_is_recorded_fails(world: RebuildWorld) -> None:
    plan = world.steps.begin(world.rebuild_id)
    world.export(plan)
    key = next(k for k in world.objects.list("rebuilds/") if k.endswith(".gz"))
    with pytest.raises(LookupError, match="export_done"):
        world.steps.shuffle(world.rebuild_id, key)


def _view(world: RebuildWorld) -> dict[str, Any]:
    from orders_core.rebuild.operations import RebuildOperations

    return RebuildOperations(world.control, world.runs, [PROJECTION], None).run(world.rebuild_id)


def test_operators_see_what_retiring_left(world: RebuildWorld) -> None:
    world.run_until("switch")
    world.steps.retirement_failed(world.rebuild_id, "States.Timeout", "")
    assert "generation 1" in _view(world)["retirement"]


def test_an_abandon_deletes_within_its_budget_and_says_what_it_left(world: RebuildWorld) -> None:
    # Given a partial generation larger than the abandon's budget of one page (1,000 rows evaluated)
    world.run_until("apply_bucket")
    for n in range(1_500):
        world.table.put_next_version((f"2#filler-{n:05}", "view"), {}, version=1, expected=None)
    endings = RunEndings(
        control=world.control,
        runs=world.runs,
        read_store_for=lambda _name: world.table,
        now=lambda: "2026-11-29T10:00:00.000000Z",
        delete_pages=1,
    )

    # When the run is abandoned, then the claim is released at once, and the run says what is left
    ended = endings.abandon(world.rebuild_id, "execution ABORTED")
    assert ended["status"] == "FAILED" and world.claim().building_rebuild_id is None
    assert 0 < len(world.rows(2)) < 1_500 + 5
    assert "abandoned generation 2" in world.run().details["abandoned_rows"]
    assert "abandoned generation 2" in _view(world)["abandoned_rows"]


def test_a_shuffle_writes_as_it_reads_and_a_retried_one_writes_the_same_parts() -> None:
    # Given a shuffle that may hold only a few hundred bytes before it writes (64 MB deployed)
    world = RebuildWorld(shuffle_buffer_bytes=300)
    world.place_orders(12)
    world.start()
    plan = world.run_until("shuffle")
    buckets = f"rebuilds/{world.rebuild_id}/buckets/"
    fragments = world.objects.list(buckets)
    # Then the buckets hold several parts of the one export file, and a retried shuffle rewrites them
    assert len({key.rsplit("-", 1)[-1] for key in fragments}) > 1
    data = [key for key in world.objects.list(plan["export_prefix"]) if "/data/" in key]
    before = {key: world.objects.get(key) for key in fragments}
    for key in data:
        world.steps.shuffle(world.rebuild_id, key)
    assert {
        key: world.objects.get(key) for key in world.objects.list(f"rebuilds/{world.rebuild_id}/buckets/")
    } == before
    # And the generation built from the parts equals the one readers use
    for bucket in plan["buckets"]:
        world.steps.apply_bucket(world.rebuild_id, bucket)
    assert world.steps.verify(world.rebuild_id)["commits"] == len(world.commits())
    rows = {(pk.split("#", 1)[1], sk): row["version"] for (pk, sk), row in world.rows(2).items()}
    assert rows == {(pk.split("#", 1)[1], sk): row["version"] for (pk, sk), row in world.rows(1).items()}
