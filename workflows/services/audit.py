"""The audit trail (I7): append-only events, sealed into one hash chain.

Writers only insert an event carrying its own ``row_hash`` and take no lock, so
concurrent intake never waits on the chain. ``seal`` links committed events into
the chain in a single sealing process and signs the head; ``verify`` checks it.
Each event also carries a keyed MAC of its ``row_hash`` (so a row written without the
signing key does not verify) and a ``recorded_at`` the database assigns (so it cannot
be backdated).
"""

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone

from workflows import db, json_codec
from workflows.actors import is_system
from workflows.models import AuditCheckpoint, AuditEvent, AuditSeal


def _canonical(value) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)``:
    the text every row hash since the first covers (written by orjson, the same bytes)."""
    return json_codec.canonical(value, encoder=DjangoJSONEncoder)


def _round_trip(value):
    """``value`` as the database will return it: its canonical text, read back."""
    return json_codec.loads(_canonical(value).encode(), fallback=json.loads)


def event_hash(event: AuditEvent) -> str:
    """What the chain vouches for: every field of the event but its id and what is
    derived or assigned at insert (``row_mac``, ``recorded_at``)."""
    content = {
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "verb": event.verb,
        "object_type": event.object_type,
        "object_id": str(event.object_id),
        "case": event.case_id,
        "data": event.data,
    }
    if event.backfilled:  # only then, so that the hashes of ordinary events stay as they were
        content["backfilled"] = True
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def row_mac(row_hash: str, *, key: str | None = None) -> str:
    """HMAC-SHA256 of an event's ``row_hash`` with the audit signing key.

    Over the hash, not the content again: one more compression of 64 bytes, however large
    the event. The prefix keeps it apart from the checkpoints' ``"{seq}:{chain_hash}"``.
    """
    key = settings.AUDIT_SIGNING_KEY if key is None else key
    return hmac.digest(key.encode(), b"row:" + row_hash.encode(), "sha256").hex()


def _row_mac_is_valid(event: AuditEvent) -> bool:
    return bool(event.row_mac) and any(
        hmac.compare_digest(row_mac(event.row_hash, key=key), event.row_mac)
        for key in _signing_keys())


_backfilling: ContextVar[bool] = ContextVar("audit_backfilling", default=False)


@contextmanager
def backfilling():
    """Events built inside are marked ``backfilled``: their ``occurred_at`` is set in the
    past on purpose (the demo seed replays days of history), so it will not match the
    time the database recorded them. Verification refuses such events unless told to
    accept them; production code never enters this."""
    token = _backfilling.set(True)
    try:
        yield
    finally:
        _backfilling.reset(token)


def build(*, verb: str, object_type: str, object_id, actor=None, actor_label: str = "",
          case=None, case_id: int | None = None, data: dict | None = None,
          now: datetime | None = None) -> AuditEvent:
    """An unsaved event with its hash, for ``bulk_create`` in a batch.

    Who acted is said, never assumed: a person (``actor``), the system
    (``actor=SYSTEM``, or a ``SystemActor`` with a command's label), or an
    ``actor_label`` alone for an actor that is no user (an AI system, ``ai:<slug>``).
    """
    if is_system(actor):
        actor_label, actor = actor_label or actor.label, None
    elif actor is not None:
        actor_label = actor_label or actor.get_username()
    elif not actor_label:
        raise TypeError("Say who acted: a person, workflows.actors.SYSTEM, or an "
                        "actor_label for an actor that is no user (an AI system).")
    verb = str(verb)  # an ``AuditVerb`` (or a domain's) member stores as its plain value
    # A JSON round trip makes the hashed data exactly what the database will return.
    data = _round_trip(data or {})
    event = AuditEvent(occurred_at=now or timezone.now(), actor=actor, actor_label=actor_label,
                       verb=verb, object_type=object_type, object_id=str(object_id),
                       case=case, data=data, backfilled=_backfilling.get())
    if case is None and case_id is not None:
        event.case_id = case_id
    event.row_hash = event_hash(event)
    event.row_mac = row_mac(event.row_hash)
    return event


# The columns of the values ``row`` answers, in its order; ``recorded_at`` is left to
# the database.
ROW_COLUMNS = ("occurred_at", "actor_id", "actor_label", "verb", "object_type", "object_id",
               "case_id", "data", "row_hash", "row_mac", "backfilled")


def row(*, verb: str, object_type: str, object_id, actor_label: str, now: datetime,
        case_id: int | None = None, data: dict | None = None) -> tuple:
    """An event of no user (an AI system, the system) as the values of ``ROW_COLUMNS``,
    ``data`` as JSON text: for a batch written by ``COPY``.

    The same event, ``row_hash`` and ``row_mac`` as ``build`` makes, without a model
    instance or a second JSON round trip: ``data``'s canonical text is already what the
    hash covers.
    """
    data_json = _canonical(data or {})
    object_id = str(object_id)
    verb = str(verb)
    occurred_at = now.astimezone(UTC).isoformat()
    backfilled = _backfilling.get()
    marker = '"backfilled":true,' if backfilled else ""
    # event_hash's canonical JSON, its keys in sorted order.
    text = _scalar_text
    content = (f'{{"actor":null,"actor_label":{text(actor_label)},{marker}'
               f'"case":{text(case_id)},"data":{data_json},'
               f'"object_id":{text(object_id)},"object_type":{text(object_type)},'
               f'"occurred_at":{text(occurred_at)},"verb":{text(verb)}}}')
    row_hash = hashlib.sha256(content.encode()).hexdigest()
    return (now, None, actor_label, verb, object_type, object_id, case_id, data_json,
            row_hash, row_mac(row_hash), backfilled)


def _scalar_text(value) -> str:
    """``json_codec.canonical(value)`` of a row's scalar: plain ASCII text, an integer and
    None written directly, anything else by the codec."""
    kind = type(value)
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
    elif kind is int:
        return str(value)
    elif value is None:
        return "null"
    return json_codec.canonical(value)


def record(**kwargs) -> AuditEvent:
    """Write one event in the caller's transaction."""
    event = build(**kwargs)
    event.save()
    return event


def snapshot(obj, fields) -> dict:
    """``fields`` of ``obj`` as an audit event keeps them: a foreign key as its id, a
    many-to-many as its sorted ids (an unsaved object has none yet), the rest as is."""
    values = {}
    for name in fields:
        field = obj._meta.get_field(name)
        if field.many_to_many:
            values[name] = (sorted(getattr(obj, name).values_list("pk", flat=True))
                            if obj.pk else [])
        else:
            values[name] = getattr(obj, field.attname)
    return _round_trip(values)


def changes(before: dict, after: dict) -> dict:
    """``{"before": ..., "after": ...}`` of the fields that differ, for an edit's event."""
    changed = [name for name in after if before.get(name) != after[name]]
    return {"before": {name: before.get(name) for name in changed},
            "after": {name: after[name] for name in changed}}


def record_changes(*, before: dict, after: dict, actor, verb, object_type: str, object_id,
                   now: datetime | None = None, **data) -> None:
    """An edit's one event, with the fields that differ before and after; an edit that
    changed nothing records nothing."""
    diff = changes(before, after)
    if diff["after"]:
        record(actor=actor, verb=verb, object_type=object_type, object_id=object_id, now=now,
               data={**data, **diff})



@transaction.atomic
def edit_settings(obj, *, changes: dict, fields: Sequence[str], actor, verb, object_type: str,
                  slug_key: str = "slug", now: datetime | None = None,
                  describe: Callable | None = None):
    """Every settings editor's one path: refuse a name not among ``fields`` (a caller's
    bug: TypeError), lock the row, set the plain fields, validate, save, then set the
    many-to-many ones; one ``verb`` event with the fields that differ before and after
    (``describe(row)``, else their snapshot) and the row's slug under ``slug_key``. A
    change to nothing records nothing. Answers the row as saved."""
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise TypeError(f"Not a {obj._meta.verbose_name} setting: {', '.join(unknown)}.")
    describe = describe or (lambda row: snapshot(row, fields))
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    before = describe(obj)
    many = {name: value for name, value in changes.items()
            if obj._meta.get_field(name).many_to_many}
    for name, value in changes.items():
        if name not in many:
            setattr(obj, name, value)
    obj.full_clean()
    obj.save()
    for name, value in many.items():
        getattr(obj, name).set(value)
    record_changes(before=before, after=describe(obj), actor=actor, verb=verb,
                   object_type=object_type, object_id=obj.pk, now=now,
                   **{slug_key: obj.slug})
    return obj

# --- Sealing: one chain over committed events -----------------------------------------

logger = logging.getLogger("backstop.audit")

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the single sealer: "Backstop" in ASCII, so that it cannot
# clash with a lock another part of the system takes by accident.
SEAL_LOCK_ID = int.from_bytes(b"Backstop", "big")
# How far below the newest sealed event id the sealer still looks for unsealed events.
# A writer takes its id when it inserts but may commit later (a long intake batch); the
# window must cover the ids other writers take meanwhile. Events that fall below it are
# reported by ``verify`` as never sealed and picked up with a wider ``window``.
DEFAULT_SEAL_WINDOW = 100_000
# An event still unsealed this long after it was recorded is a problem, not a lag.
NEVER_SEALED_AFTER = timedelta(minutes=5)
# How far an event's occurred_at may lie from the database's recorded_at: the writer's
# clock against the database's, and a transaction's start (PostgreSQL's now()) against
# the moment its writer stamped the event. Farther is a backdated (or future-dated) row.
RECORDED_WITHIN = timedelta(minutes=5)
# Rows per query when verifying, so memory stays bounded whatever the history.
VERIFY_CHUNK = 2000
# Past this many, problems are counted rather than listed (a wrong key fails every one).
MAX_LISTED_PROBLEMS = 1000


class AuditChainBroken(Exception):
    """The stored head no longer matches the newest checkpoint: someone changed the tail."""


def chain_hash(previous: str, row_hash: str) -> str:
    return hashlib.sha256((previous + row_hash).encode()).hexdigest()


def _signing_keys() -> list[str]:
    # Fallbacks let an operator rotate the key and still verify older checkpoints.
    return [settings.AUDIT_SIGNING_KEY, *settings.AUDIT_SIGNING_KEY_FALLBACKS]


def checkpoint_signature(*, seq: int, chain_hash: str, key: str | None = None) -> str:
    """HMAC-SHA256 over ``"{seq}:{chain_hash}"`` with the audit signing key."""
    key = settings.AUDIT_SIGNING_KEY if key is None else key
    return hmac.new(key.encode(), f"{seq}:{chain_hash}".encode(), hashlib.sha256).hexdigest()


def _signature_is_valid(checkpoint: AuditCheckpoint) -> bool:
    return any(
        hmac.compare_digest(
            checkpoint_signature(seq=checkpoint.seq, chain_hash=checkpoint.chain_hash, key=key),
            checkpoint.signature)
        for key in _signing_keys())


def seal(*, batch_size: int = 5000, now: datetime | None = None,
         window: int | None = None) -> int:
    """Link committed, unsealed events into the chain; return how many were sealed.

    Each batch is its own durable transaction (so never call this inside one) that
    appends its seals and a signed checkpoint of the new head together: every committed
    head has a checkpoint, and a crash loses at most the batch in flight (its events
    stay unsealed for the next run). Raises ``AuditChainBroken`` rather than extend a
    chain whose head no longer matches its newest checkpoint.
    """
    if window is None:
        window = getattr(settings, "AUDIT_SEAL_WINDOW", DEFAULT_SEAL_WINDOW)
    sealed = 0
    after_id = None
    while True:
        checkpoint, count, after_id = _seal_batch(batch_size=batch_size, window=window,
                                                  after_id=after_id, now=now or timezone.now())
        if checkpoint is None:
            return sealed
        sealed += count
        _log_checkpoint(checkpoint)
        if count < batch_size:
            return sealed  # caught up; later commits wait for the next run


def _log_checkpoint(checkpoint: AuditCheckpoint) -> None:
    # Operators ship these lines to storage the database's owners cannot rewrite, and
    # compare them later with ``verify_audit_chain --expect-head SEQ:HASH``.
    logger.info("audit checkpoint seq=%d chain_hash=%s signature=%s created_at=%s",
                checkpoint.seq, checkpoint.chain_hash, checkpoint.signature,
                checkpoint.created_at.isoformat(),
                extra={"audit_checkpoint": {"seq": checkpoint.seq,
                                            "chain_hash": checkpoint.chain_hash,
                                            "signature": checkpoint.signature}})


def _seal_batch(*, batch_size: int, window: int, after_id: int | None,
                now: datetime) -> tuple[AuditCheckpoint | None, int, int | None]:
    with transaction.atomic(durable=True):
        # One sealer at a time. On SQLite the IMMEDIATE write transaction already
        # serializes; on PostgreSQL the lock is held to commit. Read committed isolation
        # makes the head read below see whatever the previous holder committed.
        db.hold_transaction_lock(SEAL_LOCK_ID)
        head = AuditSeal.objects.order_by("-seq").values("seq", "chain_hash").first()
        newest = AuditCheckpoint.objects.order_by("-seq").values("seq", "chain_hash").first()
        head_seq, head_hash = (head["seq"], head["chain_hash"]) if head else (0, GENESIS)
        if newest and (newest["seq"], newest["chain_hash"]) != (head_seq, head_hash):
            # Sealing on would reuse sequence numbers of a removed tail or vouch for a
            # rewritten one: stop and let a person look.
            raise AuditChainBroken(
                f"The chain head #{head_seq} does not match the newest checkpoint "
                f"#{newest['seq']}; nothing sealed. Run verify_audit_chain.")
        if after_id is None:
            # Never anti-join the whole history: only events near the sealed frontier can
            # still be unsealed (see DEFAULT_SEAL_WINDOW).
            newest_id = AuditSeal.objects.aggregate(newest=Max("event_id"))["newest"] or 0
            after_id = max(newest_id - window, 0)
        # The bound is repeated inside the subquery so that PostgreSQL merges two index
        # ranges (events and seals above after_id) instead of hashing every seal.
        sealed = AuditSeal.objects.filter(event_id=OuterRef("id"), event_id__gt=after_id)
        events = list(AuditEvent.objects.filter(id__gt=after_id).exclude(Exists(sealed))
                      .order_by("id").values_list("id", "row_hash")[:batch_size])
        if not events:
            return None, 0, after_id
        seals = []
        for event_id, row_hash in events:
            head_seq += 1
            head_hash = chain_hash(head_hash, row_hash)
            seals.append(AuditSeal(seq=head_seq, event_id=event_id, chain_hash=head_hash))
        AuditSeal.objects.bulk_create(seals)
        checkpoint = AuditCheckpoint.objects.create(
            seq=head_seq, chain_hash=head_hash, created_at=now,
            signature=checkpoint_signature(seq=head_seq, chain_hash=head_hash))
    return checkpoint, len(seals), events[-1][0]


# --- Verification ----------------------------------------------------------------------

@dataclass
class VerificationReport:
    ok: bool
    problems: list[str]
    sealed: int
    unsealed: int
    head: tuple[int, str] | None = None  # (seq, chain_hash) of the newest seal
    problem_count: int = 0  # all problems, including those past MAX_LISTED_PROBLEMS
    backfilled: int = 0  # events marked backfilled (accepted or not)
    # The first link of the chain that does not hold, in seq order, or None.
    first_broken_link: "BrokenLink | None" = None


@dataclass(frozen=True)
class BrokenLink:
    """Where the chain first breaks: which seal and event, what was checked (``seq``,
    ``row_hash`` or ``chain_hash``), the value it should have and the value stored."""

    seq: int
    event_id: int
    field: str
    expected: str
    found: str


class _Problems:
    def __init__(self):
        self.listed: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED_PROBLEMS:
            self.listed.append(message)

    def as_list(self) -> list[str]:
        hidden = self.count - len(self.listed)
        return self.listed + ([f"... and {hidden} more problems"] if hidden else [])


def _checkpoints(*, upto: int, chunk: int) -> Iterator[AuditCheckpoint]:
    """Checkpoints by ascending seq up to ``upto``, one keyset page per query."""
    after = 0
    while True:
        page = list(AuditCheckpoint.objects.filter(seq__gt=after, seq__lte=upto)
                    .order_by("seq")[:chunk])
        yield from page
        if len(page) < chunk:
            return
        after = page[-1].seq


def _sealed_events(*, upto: int, chunk: int) -> Iterator[AuditEvent]:
    """Sealed events in seq order, annotated with their ``seq`` and ``link`` (chain_hash).

    One seq range per query: a plain index range whatever the table statistics say, and
    one model instance per row.
    """
    for start in range(0, upto, chunk):
        yield from (AuditEvent.objects
                    .filter(seal__seq__gt=start, seal__seq__lte=min(start + chunk, upto))
                    .annotate(seq=F("seal__seq"), link=F("seal__chain_hash"))
                    .order_by("seal__seq"))


class _Backfilled:
    """Events marked backfilled: counted, and one problem for all unless accepted."""

    def __init__(self, *, accepted: bool):
        self.accepted = accepted
        self.count = 0
        self.ids: list[int] = []

    def add(self, event: AuditEvent) -> None:
        self.count += 1
        if len(self.ids) < 20:
            self.ids.append(event.id)

    def report(self, problems: _Problems) -> None:
        if self.count and not self.accepted:
            shown = ", ".join(map(str, self.ids)) + (", ..." if self.count > len(self.ids)
                                                     else "")
            plural = "s" if self.count != 1 else ""
            problems.add(f"{self.count} event{plural} marked backfilled (occurred_at set in "
                         f"the past on purpose, as the demo seed does): event{plural} {shown}; "
                         f"in production this is a forged history, on a demo database "
                         f"accept it with --accept-backfilled")


def _check_event(event: AuditEvent, where: str, problems: _Problems,
                 backfilled: _Backfilled) -> None:
    """The row's own guarantees, before the chain is trusted with it: its MAC (written
    with the key) and its occurred_at against the time the database recorded it."""
    if not event.row_mac:
        problems.add(f"{where}: no row_mac (written without the signing key)")
        return
    if not _row_mac_is_valid(event):
        problems.add(f"{where}: row_mac is not valid (forged row, or signed with a key "
                     f"missing from AUDIT_SIGNING_KEY_FALLBACKS)")
        return
    if event.backfilled:
        backfilled.add(event)
        return
    drift = event.occurred_at - event.recorded_at
    if abs(drift) > RECORDED_WITHIN:
        side = "before" if drift < timedelta(0) else "after"
        problems.add(f"{where}: occurred_at {event.occurred_at.astimezone(UTC).isoformat()} "
                     f"is {abs(drift)} {side} the database recorded it at "
                     f"{event.recorded_at.astimezone(UTC).isoformat()} (backdated row?)")


def _unsealed_events(*, chunk: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        page = list(AuditEvent.objects.filter(seal__isnull=True, id__gt=after)
                    .order_by("id")[:chunk])
        yield from page
        if len(page) < chunk:
            return
        after = page[-1].id


def verify(*, expected_head: tuple[int, str] | None = None, now: datetime | None = None,
           chunk_size: int = VERIFY_CHUNK, accept_backfilled: bool = False,
           progress: Callable[[int], None] | None = None) -> VerificationReport:
    """Walk the whole chain and its checkpoints and say what, if anything, is wrong.

    ``expected_head`` is a (seq, chain_hash) kept outside the database (a shipped
    checkpoint); it catches a tail truncated together with its checkpoints. Events marked
    backfilled (the demo seed's history) are a problem unless ``accept_backfilled``.
    ``progress`` is told how many events were checked, every ``chunk_size`` of them.
    """
    now = now or timezone.now()
    problems = _Problems()
    backfilled = _Backfilled(accepted=accept_backfilled)
    # Bound the walk to what exists now so that a sealer running meanwhile cannot make
    # its fresh seals look unvouched. The checkpoint is read first: seals commit with
    # their checkpoint, so an honest head is never below it, and a truncated one is.
    newest_checkpoint = AuditCheckpoint.objects.aggregate(seq=Max("seq"))["seq"] or 0
    newest_seal = AuditSeal.objects.aggregate(seq=Max("seq"))["seq"] or 0
    upto = max(newest_checkpoint, newest_seal)

    checkpoints = _checkpoints(upto=upto, chunk=chunk_size)
    checkpoint = next(checkpoints, None)
    last_checkpoint_seq = 0
    expected_seen = False
    previous_seq, previous_hash = 0, GENESIS
    sealed = 0
    first_broken_link = None
    for event in _sealed_events(upto=upto, chunk=chunk_size):
        sealed += 1
        if progress and sealed % chunk_size == 0:
            progress(sealed)
        gap = event.seq != previous_seq + 1
        if gap and first_broken_link is None:
            first_broken_link = BrokenLink(seq=event.seq, event_id=event.id, field="seq",
                                           expected=str(previous_seq + 1), found=str(event.seq))
        if gap:
            missing = (f"#{previous_seq + 1}" if event.seq == previous_seq + 2
                       else f"#{previous_seq + 1}..#{event.seq - 1}")
            problems.add(f"seq {missing} missing: the chain jumps from #{previous_seq} to "
                         f"#{event.seq} (rows deleted)")
        _check_event(event, f"seq #{event.seq}, event {event.id}", problems, backfilled)
        content_hash = event_hash(event)
        if content_hash != event.row_hash:
            problems.add(f"seq #{event.seq}, event {event.id}: the event's content does not "
                         f"match its row_hash (row edited)")
            if first_broken_link is None:
                first_broken_link = BrokenLink(seq=event.seq, event_id=event.id,
                                               field="row_hash", expected=content_hash,
                                               found=event.row_hash)
        # After a gap the link cannot be checked (its predecessor is gone); elsewhere a
        # wrong link means the row_hash or the chain was rewritten.
        link = None if gap else chain_hash(previous_hash, event.row_hash)
        if link is not None and link != event.link:
            if first_broken_link is None:
                first_broken_link = BrokenLink(seq=event.seq, event_id=event.id,
                                               field="chain_hash", expected=link,
                                               found=event.link)
            problems.add(f"seq #{event.seq}, event {event.id}: chain_hash does not follow from "
                         f"#{previous_seq} (row_hash or chain rewritten)")
        while checkpoint is not None and checkpoint.seq <= event.seq:
            last_checkpoint_seq = checkpoint.seq
            _check_checkpoint(checkpoint, event if checkpoint.seq == event.seq else None,
                              problems)
            checkpoint = next(checkpoints, None)
        if expected_head and expected_head[0] == event.seq:
            expected_seen = True
            if expected_head[1] != event.link:
                problems.add(f"seq #{event.seq}: chain_hash {event.link} differs from the "
                             f"expected head {expected_head[1]} (chain rewritten)")
        # Resynchronise on the stored hash so one break is reported once, not at every
        # later seal.
        previous_seq, previous_hash = event.seq, event.link
    while checkpoint is not None:
        last_checkpoint_seq = checkpoint.seq
        _check_checkpoint(checkpoint, None, problems)
        checkpoint = next(checkpoints, None)

    if previous_seq > last_checkpoint_seq:
        problems.add(f"seq #{last_checkpoint_seq + 1}..#{previous_seq} are not covered by any "
                     f"checkpoint (checkpoints deleted?)")
    if expected_head and not expected_seen:
        problems.add(f"expected head #{expected_head[0]} is not in the chain, which ends at "
                     f"#{previous_seq} (tail truncated)")

    unsealed = 0
    for event in _unsealed_events(chunk=chunk_size):
        unsealed += 1
        if progress and unsealed % chunk_size == 0:
            progress(sealed + unsealed)
        _check_event(event, f"unsealed event {event.id}", problems, backfilled)
        if event_hash(event) != event.row_hash:
            problems.add(f"unsealed event {event.id}: the event's content does not match its "
                         f"row_hash (row edited)")
    backfilled.report(problems)
    if unsealed:
        late = AuditEvent.objects.filter(seal__isnull=True,
                                         recorded_at__lt=now - NEVER_SEALED_AFTER)
        late_count = late.count()
        if late_count:
            ids = list(late.order_by("id").values_list("id", flat=True)[:20])
            shown = ", ".join(map(str, ids)) + (", ..." if late_count > len(ids) else "")
            plural = "s" if late_count != 1 else ""
            problems.add(f"{late_count} event{plural} older than {NEVER_SEALED_AFTER} never "
                         f"sealed (or their seal was deleted): event{plural} {shown}; is the "
                         f"sealer running? If so, seal_audit_chain --window reaching back "
                         f"to them seals them")

    head = (previous_seq, previous_hash) if sealed else None
    return VerificationReport(ok=problems.count == 0, problems=problems.as_list(),
                              sealed=sealed, unsealed=unsealed, head=head,
                              problem_count=problems.count, backfilled=backfilled.count,
                              first_broken_link=first_broken_link)


def _check_checkpoint(checkpoint: AuditCheckpoint, event: AuditEvent | None,
                      problems: _Problems) -> None:
    if not _signature_is_valid(checkpoint):
        problems.add(f"checkpoint #{checkpoint.seq}: signature is not valid (forged or "
                     f"altered checkpoint)")
    if event is None:
        problems.add(f"checkpoint #{checkpoint.seq}: seq #{checkpoint.seq} is not in the "
                     f"chain (rows deleted or tail truncated)")
    elif event.link != checkpoint.chain_hash:
        problems.add(f"checkpoint #{checkpoint.seq}: chain_hash differs from seq "
                     f"#{event.seq}, event {event.id} (chain rewritten)")
