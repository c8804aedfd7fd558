"""SQLAlchemy 2 models: the source of truth for every row.

Models hold no commits and no behaviour beyond small derived properties; services own transactions and
change state only with conditional updates (see `app/services/core/lifecycle.py`).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use app.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        """None for a column the driver reports as PostgreSQL's `timestamptz` (psycopg reads it aware,
        so there is nothing to do, and a row of a dozen dates skips a call per date); the offset set on
        any other (SQLite's text, a naive `timestamp`)."""
        if coltype == _TIMESTAMPTZ_OID and dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)


_TIMESTAMPTZ_OID = 1184  # pg_type.oid of timestamp with time zone


class StrEnumType(TypeDecorator):
    """A `StrEnum` stored as its string value: rows read back as members, the column stays a VARCHAR."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[enum.StrEnum], length: int):
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> enum.StrEnum | None:
        return None if value is None else self.enum_class(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class RecordingState(enum.StrEnum):
    """A recording's lifecycle: started -> stopped -> finished, or failed / deleted."""

    STARTED = "started"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"
    DELETED = "deleted"


class Ingest(enum.StrEnum):
    """How a recording's media gets in."""

    PULL = "pull"  # a capture job reads `media_source`
    PUSH = "push"  # the meeting app uploads its own MediaRecorder chunks
    NONE = "none"  # an interaction session that records events only


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    retention_days: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key; only its SHA-256 is stored (keys are 256-bit random, so a fast hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # When the key last authenticated, to within `key_use.RECORD_EVERY` (not written on every request).
    last_used_at: Mapped[datetime | None]
    # Space-separated origins (scheme://host[:port]) a browser may use this key from; empty: any origin.
    # Checked where a browser sends it (CORS ingest, WebSocket handshakes), so a public key shipped in
    # one site's pages cannot be used from another site's.
    allowed_origins: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    # Only the project's public token (PostHog's `api_token`, scope `ingest`, shown again on every read of
    # the project) keeps its raw value, sealed with MEETREC_SECRET_KEY; every other key is only hashed.
    public_token_sealed: Mapped[str | None] = mapped_column(Text)

    project: Mapped[Project] = relationship(lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class Room(Base):
    """One running instance of a meeting room.

    `key` is the caller's room id (Eyeson `id`). A room id can be used again after its meeting shut
    down, so rows are meeting instances: only one instance per key may be running (a partial unique
    index), and `GET /rooms/{id}/recordings?started_at=` picks the instance running at that moment.
    """

    __tablename__ = "rooms"
    __table_args__ = (
        Index(
            "uq_rooms_running_key",
            "project_id",
            "key",
            unique=True,
            sqlite_where=text("shutdown_at IS NULL"),
            postgresql_where=text("shutdown_at IS NULL"),
        ),
        Index("ix_rooms_project_key", "project_id", "key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    media_source: Mapped[str | None] = mapped_column(String(2000))
    guest_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    shutdown_at: Mapped[datetime | None]
    # The recording this room is capturing now; set and cleared with conditional updates, so two
    # concurrent start calls cannot both win.
    active_recording_id: Mapped[str | None] = mapped_column(String(32))

    @property
    def shutdown(self) -> bool:
        return self.shutdown_at is not None

    @property
    def recording_available(self) -> bool:
        return bool(self.options.get("recording_available", True))


class Participant(Base):
    """A user in a room, holding an access key (stored hashed) that authorizes room calls."""

    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    access_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    avatar: Mapped[str | None] = mapped_column(String(2000))
    guest: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    room: Mapped[Room] = relationship(lazy="joined")


def _own_id(context: Any) -> str:
    """A recording's external id defaults to its own id."""
    return str(context.get_current_parameters()["id"])


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        Index("ix_recordings_room_created", "room_id", "created_at"),
        Index("ix_recordings_state", "state"),
        # Unique among live recordings: a deleted one frees its id for the client to use again.
        Index(
            "uq_recordings_project_external_id",
            "project_id",
            "external_id",
            unique=True,
            sqlite_where=text("state != 'deleted'"),
            postgresql_where=text("state != 'deleted'"),
        ),
    )

    # A column a new recording does not set (see `recordings.STARTED_COLUMNS`) has a server default equal
    # to its Python default, or neither: `fused.start`'s INSERT leaves it to the server and answers the
    # Python one without reading the row back (test_hot_writes compares the two).
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[str | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    participant_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id", ondelete="SET NULL"))
    # The id the client knows it by, unique in its project: the recording's own id unless the client
    # made one (a web replay's session id), so two projects may send the same id without colliding.
    external_id: Mapped[str] = mapped_column(String(64), default=_own_id)
    state: Mapped[RecordingState] = mapped_column(
        StrEnumType(RecordingState, 16), default=RecordingState.STARTED
    )
    # None for an interaction session without video (ingest "none").
    media_source: Mapped[str | None] = mapped_column(String(2000))
    # The sessions API: a free description; room recordings have none.
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stop_requested_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    duration: Mapped[float | None] = mapped_column(Float)
    object_key: Mapped[str | None] = mapped_column(String(500))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(100))
    ingest: Mapped[Ingest] = mapped_column(StrEnumType(Ingest, 8), default=Ingest.PULL, server_default="pull")
    # The capture lease: only the job holding it may write segments (RQ can run one job twice).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    # Why a capture ended other than by a stop call (e.g. the maximum duration), kept for operators.
    stop_reason: Mapped[str | None] = mapped_column(String(200))
    # Interruptions of a pull capture: len(gaps).
    reconnects: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Capture jobs that recorded this recording: 1 unless one handed over or was lost and resumed.
    capture_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How often the reconciler had to resume a lost capture (a dead worker, a flushed Redis): its
    # give-up limit counts these, so a recording handed over at every deploy is never failed for it.
    capture_losses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Every interruption of a pull capture, while media did not flow: a dropped source reconnected, a
    # worker that shut down and handed over, a capture lost and resumed:
    # [{"after_seq", "seconds", "reason"}].
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    poster_key: Mapped[str | None] = mapped_column(String(500))
    # Retention exemptions: a persisted recording is kept until deleted; a legal hold (set and lifted
    # only with an admin key) also blocks deletion through the API.
    persist: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    legal_hold: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # When a deletion (the API's or the retention purge's) claimed the recording before removing its
    # objects: from then on its flags cannot change, so no hold is set on a recording losing its media.
    condemned_at: Mapped[datetime | None]
    # Interaction events stored for this recording (kept in step with session_events).
    event_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where wall-clock time lands in the final video, set at finalize: [[wall_start_unix, video_start,
    # seconds], ...], one span per stretch of continuous media (a reconnect gap starts a new one).
    timeline: Mapped[list[Any] | None] = mapped_column(JSON)

    room: Mapped[Room | None] = relationship(lazy="joined")
    participant: Mapped[Participant | None] = relationship(lazy="joined")


class Segment(Base):
    """One closed piece of a recording's media, uploaded as its own object while recording.

    Pull captures write independently decodable segments; push recordings store the meeting app's chunks
    (pieces of one byte stream). `seq` orders them; a (recording, seq) pair is written at most once.
    """

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("recording_id", "seq", name="uq_segments_recording_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    duration: Mapped[float | None] = mapped_column(Float)  # None for push chunks (not decodable alone)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaPack(Base):
    """A run of capture segments rewritten into clusters of the final WebM (app.media.webm_compose), at
    least MEETREC_COMPOSE_PART_BYTES, so a finish joins them without downloading them again.

    Part 1 is never uploaded while capturing (the finish uploads it behind the file's head); parts 2..n
    are parts of the multipart upload `upload_id` of the final object. `sources` digests the (seq,
    SHA-256) of the segments it holds and `base_ms` is where its first one starts on the recording's
    timeline: a finish uses a pack only when both still agree with the segment rows.
    """

    __tablename__ = "media_packs"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    base_ms: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    sources: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))
    upload_id: Mapped[str | None] = mapped_column(String(500))
    etag: Mapped[str | None] = mapped_column(String(100))
    cues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """Where a project's webhook events go: one endpoint per API key (registering again replaces it).

    `eyeson_key_sealed` is the registering API key, AES-GCM-sealed with MEETREC_SECRET_KEY: Eyeson signs
    with the raw API key and keys are otherwise stored only hashed. `secret_sealed` is the Standard
    Webhooks `whsec_` secret; after a rotation the previous one stays valid until
    `previous_secret_expires_at`.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    types: Mapped[str] = mapped_column(String(200))  # comma-separated event types
    eyeson_key_sealed: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    # When the current run of failed attempts began (None after a success): an endpoint failing for
    # MEETREC_WEBHOOK_DISABLE_AFTER_DAYS is disabled.
    failing_since: Mapped[datetime | None]
    last_request_sent_at: Mapped[datetime | None]
    last_response_code: Mapped[int | None] = mapped_column(Integer)

    @property
    def type_list(self) -> list[str]:
        return [t for t in self.types.split(",") if t]


class WebhookEvent(Base):
    """The outbox: one row per state change, written in the transaction of that change.

    `seq` numbers the events of one resource (a recording, a room) from 1, so receivers can order them.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("type", "resource_id", "seq", name="uq_webhook_events_resource_seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryState(enum.StrEnum):
    """One attempt's state: pending (due at `due_at`), sending, then succeeded, failed or cancelled."""

    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WebhookDelivery(Base):
    """The attempt log: one row per attempt to deliver one event to one endpoint.

    A failed attempt that will be retried names `next_attempt_at`, and the retry is the next row.
    `manual` rows are operator redeliveries: one attempt, outside the per-resource ordering.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_state_due", "state", "due_at"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    manual: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempted_at: Mapped[datetime | None]
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]

    event: Mapped[WebhookEvent] = relationship(lazy="joined")


class LinkIssuance(Base):
    """The audit log of download links handed out: one row per link, written when it is signed.

    `api_key_id` is None for links issued without a key (webhook payloads, the scheduler).
    """

    __tablename__ = "link_issuances"
    __table_args__ = (Index("ix_link_issuances_recording_issued", "recording_id", "issued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class SessionEvent(Base):
    """One interaction event (click, key, scroll, text, custom) of a recording, stored as a row.

    `event_id` is the client's id when it sent one (a retried batch is a no-op) or a generated UUID;
    reads go in (`ts`, `pk`) order, so events sent out of order come back in timestamp order. `data`
    holds the type's own fields as the wire shows them (coordinates, click_data, key_data, ...).
    """

    __tablename__ = "session_events"
    __table_args__ = (
        UniqueConstraint("recording_id", "event_id", name="uq_session_events_recording_event"),
        Index("ix_session_events_recording_ts", "recording_id", "ts", "pk"),
    )

    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    ts: Mapped[float] = mapped_column(Float)  # Unix seconds
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    screenshot_key: Mapped[str | None] = mapped_column(String(300))
    # Grab a frame from the session's video at `ts` once the video is finished.
    wants_frame: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class ReplaySummary(Base):
    """A recording's web replay (rrweb events streamed from a browser), one row per recording that has one.

    Counters move with every stored block in the block's transaction: `next_sequence` is the sequenceId
    the next event gets, `blocks` the index of the next block. Timestamps are the events' own (Unix ms).
    """

    __tablename__ = "replay_summaries"
    # Pages of the project's replays newest first, ties broken by id, read from the index alone.
    __table_args__ = (
        Index("ix_replay_summaries_project_created_id", "project_id", "created_at", "recording_id"),
    )

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    next_sequence: Mapped[int] = mapped_column(BigInteger, default=1)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    blocks: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # compressed, as stored
    first_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    last_timestamp: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Read by the reconciler: a replay with no ingest for MEETREC_REPLAY_IDLE_SECONDS is finished.
    last_ingest_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Facts computed from the events at ingest (app.services.interactions.replay_facts), in the block's
    # transaction: counters add up block by block; `activity` (merged [start, end] ms intervals of
    # activity), `pages` and `start_url` are merged under the row's lock, so batches may come in any order.
    click_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    keypress_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mouse_activity_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    console_log_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    console_warn_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    console_error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active_ms: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    activity: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    pages: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    start_url: Mapped[str | None] = mapped_column(String(2000))
    start_url_at: Mapped[int | None] = mapped_column(BigInteger)  # the timestamp of start_url's Meta event
    # False for replays stored before the facts were kept at ingest, until `meetrec migrate` (or `up`)
    # computes them from the stored blocks.
    facts_complete: Mapped[bool] = mapped_column(default=True, server_default=text("false"))


class ReplayBlock(Base):
    """One stored batch of a web replay: compressed JSON lines in object storage, indexed here.

    The events of block `seq` carry sequenceIds `first_sequence..last_sequence` in line order.
    `batch_key` is the client's Idempotency-Key: a retried batch finds its block and stores nothing.
    """

    __tablename__ = "replay_blocks"
    __table_args__ = (
        UniqueConstraint("recording_id", "seq", name="uq_replay_blocks_recording_seq"),
        UniqueConstraint("recording_id", "batch_key", name="uq_replay_blocks_recording_batch"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    first_sequence: Mapped[int] = mapped_column(BigInteger)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    first_timestamp: Mapped[int] = mapped_column(BigInteger)  # the smallest event timestamp (Unix ms)
    last_timestamp: Mapped[int] = mapped_column(BigInteger)  # the largest
    events: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)  # compressed object size
    raw_bytes: Mapped[int] = mapped_column(BigInteger)  # the JSON lines before compression
    object_key: Mapped[str] = mapped_column(String(500))
    batch_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplayStream(Base):
    """How many frames of a client's WebSocket stream are stored, so a reconnect resumes without
    duplicates: the client names its stream, the server says how many frames it already holds."""

    __tablename__ = "replay_streams"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    frames: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingMeta(Base):
    """A searchable key/value pair on a recording (rrweb's recording metadata).

    `value` is the JSON value as sent (canonical JSON text); `match` is what `meta[key]=value` filters
    compare with (a string as is, any other value as JSON). `version` rises on every change of the value.
    """

    __tablename__ = "recording_meta"
    __table_args__ = (Index("ix_recording_meta_lookup", "project_id", "key", "match"),)

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(Text)
    match: Mapped[str] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """A named HMAC key that signs presigned URLs (`keyId`, `expires`, `signature` query parameters).

    New links are signed with the project's newest active key; older keys keep verifying until retired,
    so rotating is: create a key, let links signed with the old one expire, retire the old one.
    The secret is AES-GCM-sealed with MEETREC_SECRET_KEY.
    """

    __tablename__ = "signing_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the keyId links carry
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None]


class RecordingView(Base):
    """A key that read a recording (PostHog's `viewed`/`viewers`): one row per recording and key."""

    __tablename__ = "recording_views"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SharingConfiguration(Base):
    """A recording's public link (PostHog sharing): while `enabled`, its access token opens that one
    recording read-only. The token is stored hashed (for lookup) and sealed (shown again to the owner);
    enabling after a disable mints a new token, so a revoked link never works again."""

    __tablename__ = "sharing_configurations"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_sealed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Playlist(Base):
    """A named collection of recordings (PostHog's session recording playlist), addressed by `short_id`.
    `deleted` is a soft delete, as PostHog's; a deleted playlist answers 404."""

    __tablename__ = "playlists"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    short_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str | None] = mapped_column(String(400))
    derived_name: Mapped[str | None] = mapped_column(String(400))
    description: Mapped[str] = mapped_column(Text, default="")
    pinned: Mapped[bool] = mapped_column(default=False)
    deleted: Mapped[bool] = mapped_column(default=False)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    type: Mapped[str] = mapped_column(String(16), default="collection")
    created_by: Mapped[str | None] = mapped_column(String(32))  # the key that made it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlaylistItem(Base):
    """A recording pinned to a playlist."""

    __tablename__ = "playlist_items"

    playlist_id: Mapped[int] = mapped_column(ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True)
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
