"""One typed settings object, loaded once and passed down.

Sources, later ones winning: the built-in defaults below, a TOML file
(``configs/default.toml`` unless ``TYPOGRAM_CONFIG`` names another), then
environment variables ``TYPOGRAM_<FIELD>`` (upper-case field name).

Setting ``TYPOGRAM_DATABASE_URL`` to a ``mysql://`` URL, ``TYPOGRAM_REDIS_URL``
or ``TYPOGRAM_KAFKA_BOOTSTRAP`` switches that port to its distributed adapter;
left empty, the embedded adapter is used.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEV_JWT_SECRET = "dev-secret-change-me-before-any-deployment"
DEV_WEBHOOK_SECRET = "whsec_dev_placeholder_change_me"
DEV_EMAIL_WEBHOOK_SECRET = "whsec_dev_email_placeholder_change_me"
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "change-me",
        "changeme",
        "secret",
        DEV_JWT_SECRET,
        DEV_WEBHOOK_SECRET,
        DEV_EMAIL_WEBHOOK_SECRET,
    }
)
PAYMENT_PROVIDERS = frozenset({"sandbox", "stripe"})
ENV_PREFIX = "TYPOGRAM_"


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; the message says which."""


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str = "development"
    host: str = "127.0.0.1"
    http_port: int = 8000
    ws_port: int = 8765
    data_dir: str = ".data"
    database_url: str = ""
    database_replica_urls: tuple[str, ...] = ()
    database_pool_size: int = 20
    # Reads skip a replica more than this many seconds behind the primary (or down).
    database_replica_max_lag_s: float = 5.0
    # How often each process reads the primary's and the replicas' GTID positions.
    database_replica_check_s: float = 1.0
    redis_url: str = ""
    redis_prefix: str = ""
    # Redis Sentinel (``host:port`` each): the master of ``redis_sentinel_master`` is
    # looked up on every new connection; ``redis_url`` then gives only the scheme,
    # credentials and database.
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = "typogram"
    redis_sentinel_password: str = ""
    kafka_bootstrap: str = ""
    kafka_topic_prefix: str = ""
    kafka_create_topics: bool = True
    kafka_replication_factor: int = 1
    archive_url: str = ""
    archive_endpoint_url: str = ""
    archive_region: str = ""
    archive_create_bucket: bool = False
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "typogram"
    jwt_audience: str = "typogram-clients"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    guest_token_ttl_s: int = 24 * 3600
    rate_limit_user_per_min: int = 100
    rate_limit_ip_per_min: int = 1000
    # -- login throttling (typogram/login_throttle.py), per-IP quotas ------
    # Attempts per 15 min per (account, IP); per IP over all accounts; per account
    # from IPs that have not logged into it in ``login_known_ip_days``.
    login_attempts_per_15min: int = 10
    login_attempts_per_ip_per_15min: int = 100
    login_attempts_per_account_per_15min: int = 100
    # Failures in a row per (account, IP) before waits begin; the first wait, doubling.
    login_backoff_free_failures: int = 3
    login_backoff_base_s: float = 1.0
    login_backoff_max_s: int = 900
    login_known_ip_days: int = 30
    register_per_ip_per_hour: int = 20
    guest_tokens_per_ip_per_hour: int = 100
    # zxcvbn score (0..4) a new password must reach (``typogram.passwords``).
    password_min_score: int = 3
    # -- the operations surface (rest/security_headers.py, rest/context.py) --
    # Client addresses come from X-Forwarded-For only when the peer is one of these
    # (addresses or CIDR networks, comma-separated).
    trusted_proxies: tuple[str, ...] = ()
    # /metrics listens here (0: no separate listener); loopback unless a token is set.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    # When set, /metrics also answers on the HTTP port to ``Authorization: Bearer <token>``.
    metrics_token: str = ""
    max_body_bytes: int = 64 * 1024
    profile_cache_ttl_s: int = 3600
    log_level: str = "INFO"
    log_json: bool = True
    worker_max_retries: int = 5
    worker_retry_backoff_s: float = 0.2
    # ``typogram dlq replay`` refuses an event it has replayed this many times already.
    worker_dlq_replay_limit: int = 3
    # The most records ``typogram dlq`` reads from one dead-letter topic (the newest).
    worker_dlq_read_max: int = 10_000
    event_queue_size: int = 10_000
    backend_connect_timeout_s: float = 5.0
    # ``Retry-After`` of a 503 answered while a backend is unreachable (typogram.outages).
    unavailable_retry_after_s: int = 2
    # -- real-time gateway (gateway/) ------------------------------------
    ws_max_connections: int = 5000
    ws_max_frame_bytes: int = 1024 * 1024
    ws_send_queue_size: int = 256
    # SO_SNDBUF asked for on every accepted gateway socket (Linux doubles it and
    # stops autotuning it); 0 leaves the kernel's autotuning (up to tcp_wmem's max).
    ws_send_buffer_bytes: int = 128 * 1024
    ws_hello_timeout_s: float = 5.0
    # How often each live socket's token version and session are checked again.
    ws_token_check_s: float = 60.0
    ws_heartbeat_s: float = 25.0
    ws_ping_timeout_s: float = 20.0
    ws_close_timeout_s: float = 2.0
    ws_compression: bool = False
    ws_allowed_origins: tuple[str, ...] = ()
    ws_rate_per_s: float = 20.0
    ws_rate_burst: int = 40
    ws_rate_strikes: int = 20
    ws_max_bad_frames: int = 10
    ws_resume_window_s: float = 120.0
    ws_takeover_wait_s: float = 1.0
    ws_replay_frames: int = 256
    ws_replay_bytes: int = 1024 * 1024
    ws_max_rooms_per_session: int = 32
    ws_presence_query_max: int = 100
    gateway_drain_timeout_s: float = 10.0
    gateway_chat_history: int = 50
    gateway_chat_max_text: int = 500
    gateway_chat_slow_mode_s: float = 0.0
    # chat.send requests one node works on at once, whatever its load: a bound on memory.
    # Past it, or past a few while the event loop lags more than ``gateway_max_loop_lag_ms``
    # (gateway/connection/admission.py, rules 5-6): ``unavailable`` at once.
    gateway_chat_max_inflight: int = 4096
    gateway_max_loop_lag_ms: float = 50.0
    # -- chat moderation and connection caps (rooms/chat.py, gateway/connection/admission.py) --
    # Guests only read in system rooms (``lobby``, ``lobby:<lang>``, ``race:…``, ``tournament:…``).
    gateway_chat_guests_read_only: bool = False
    # A room's owner, appointed moderators, mutes and slow mode outlive its last member so long.
    gateway_chat_room_ttl_s: float = 7 * 24 * 3600.0
    # Per node. Sockets from one address that have not said hello yet, and in all (both
    # refused at the handshake with HTTP 429); sockets of one user after hello (4029).
    # A household or an office behind one NAT fits in the defaults.
    ws_max_connections_per_ip_before_hello: int = 20
    ws_max_connections_per_ip: int = 100
    ws_max_connections_per_user: int = 16
    # -- typing tests and results (typogram/typing.py, rest/results.py) ---
    typing_wpm_cap: float = 300.0
    typing_flag_wpm: float = 250.0
    typing_min_matched_pct: float = 100.0
    # Anti-cheat (typogram/anticheat.py; calibrated with ``python -m bench.anticheat``).
    typing_min_skewness: float = 0.6
    typing_min_structure_z: float = 1.0
    typing_history_ratio: float = 1.35
    typing_history_margin_wpm: float = 5.0
    typing_history_min_results: int = 10
    # The user's own rhythm (typogram/rhythm.py), once that many accepted results built it.
    typing_min_rhythm_z: float = 1.5
    typing_max_pace_z: float = 4.0
    # A result reaches a board only after this much typing (either one).
    typing_board_min_seconds: int = 15
    typing_board_min_words: int = 10
    typing_max_keystrokes: int = 5000
    typing_max_words: int = 250
    typing_max_seconds: int = 180
    typing_test_ttl_s: int = 24 * 3600
    typing_idempotency_ttl_s: int = 24 * 3600
    typing_recent_results: int = 10
    typing_recent_cache_ttl_s: int = 900
    typing_partitions_ahead: int = 3
    typing_retention_days: int = 90
    # Archived keystroke analytics are kept this long, then ``typogram partitions`` deletes them.
    analytics_cold_days: int = 365
    # -- races, matchmaking, tournaments (gateway/races/service.py, typogram/match_queues.py) --
    race_tick_ms: int = 50
    race_max_players: int = 5
    race_words: int = 30
    race_countdown_ms: int = 5000
    race_time_limit_ms: int = 180_000
    race_no_show_ms: int = 15_000
    race_lease_s: float = 3.0
    race_forward_timeout_s: float = 2.0
    race_finished_ttl_s: int = 600
    race_max_private_text: int = 1000
    # A finish log must agree with the live progress: a report may be this far ahead
    # of the log's timeline (clock offset), or behind it by this plus the delay allowed.
    race_progress_tolerance_ms: int = 2000
    race_progress_delay_ms: int = 3000
    # -- daily challenges (rest/challenges.py) --
    challenge_attempts_per_day: int = 10
    match_interval_ms: int = 200
    match_max_wait_ms: int = 4000
    match_ticket_ttl_s: int = 600
    # -- courses and subscriptions (typogram/courses, typogram/subscriptions) --
    course_catalog_cache_ttl_s: int = 3600
    course_search_max_hits: int = 500
    course_max_lessons: int = 100
    subscription_cache_ttl_s: int = 900
    subscription_grace_s: int = 3 * 24 * 3600
    subscription_expiry_interval_s: float = 60.0
    subscription_expiry_batch: int = 500
    # -- ratings, tournaments, records (typogram/ratings.py, typogram/records.py) --
    rating_cache_ttl_s: int = 24 * 3600
    rating_rank_histogram_s: float = 60.0
    tournament_sweep_s: float = 5.0
    tournament_keep_after_end_s: int = 7 * 24 * 3600
    records_cache_ttl_s: int = 300
    records_recent_races: int = 20
    # -- payments and coupons (typogram/payments) ---------------------------
    # ``sandbox`` (development and tests only) or ``stripe``.
    payments_provider: str = "sandbox"
    # Signs and verifies every webhook (``Stripe-Signature``); Stripe's ``whsec_…``.
    payments_webhook_secret: str = DEV_WEBHOOK_SECRET
    payments_webhook_tolerance_s: int = 300
    # An unpublished stored webhook event older than this is published by the sweep.
    payments_outbox_after_s: float = 10.0
    payments_sweep_interval_s: float = 15.0
    # A payment still without a provider payment after this is failed (and its coupon freed).
    payments_abandon_after_s: int = 3600
    # No checkout charges less than this (minor units): a coupon stops there.
    payments_min_amount: int = 50
    payments_recent_cache_ttl_s: int = 900
    payments_max_page: int = 100
    payments_retention_days: int = 730
    payments_stripe_api_key: str = ""
    payments_stripe_api_base: str = "https://api.stripe.com"
    payments_stripe_success_url: str = "http://127.0.0.1:8000/#/billing?checkout=done"
    payments_stripe_cancel_url: str = "http://127.0.0.1:8000/#/plans"
    payments_stripe_timeout_s: float = 10.0
    # Where the sandbox delivers webhooks; empty: this process's own REST port.
    payments_sandbox_webhook_url: str = ""
    payments_sandbox_max_payments: int = 100_000
    payments_sandbox_queue_size: int = 10_000
    payments_sandbox_delivery_concurrency: int = 8
    payments_sandbox_max_attempts: int = 8
    payments_sandbox_retry_backoff_s: float = 0.5
    # Chaos a real provider shows: each event also sent again (per cent), and
    # a random delay of up to this before each delivery (so events overtake).
    payments_sandbox_duplicate_pct: float = 0.0
    payments_sandbox_max_delay_ms: int = 0
    coupon_cache_ttl_s: int = 3600
    # -- the blog (typogram/blog, rest/blog*.py) --
    blog_cache_ttl_s: int = 3600
    blog_search_max_hits: int = 200
    blog_feed_entries: int = 20
    blog_sitemap_max_urls: int = 50_000
    blog_page_max_age_s: int = 3600
    # The site's address as search engines see it (canonical links, Open Graph, the feed,
    # the sitemap); empty: the address each request came to.
    public_url: str = ""
    blog_title: str = "Typogram blog"
    # -- e-mail (typogram/mail, workers/email.py, rest/email.py) --
    # Empty: every message is written to a Maildir under ``data_dir`` (``mail/``).
    # ``smtp://[user:pass@]host:port`` (STARTTLS when offered) or ``smtps://…``.
    smtp_url: str = ""
    # ``true``/``false``; empty: required outside development.
    smtp_require_tls: str = ""
    smtp_timeout_s: float = 10.0
    smtp_pool_size: int = 4
    mail_from: str = "Typogram <no-reply@typogram.local>"
    # The domain of every ``Message-ID``; empty: the domain of ``mail_from``.
    mail_message_id_domain: str = ""
    # Sending attempts of one message on temporary failures, and the first back-off
    # (doubling, capped) between them; then ``failed`` in the history.
    email_max_attempts: int = 5
    email_retry_backoff_s: float = 1.0
    email_retry_backoff_max_s: float = 30.0
    # Sending limits (no mail bombing through "resend" or "reset"): messages an hour.
    email_limit_per_user_per_hour: int = 10
    email_limit_per_address_per_hour: int = 5
    email_verify_token_ttl_s: int = 3 * 24 * 3600
    email_reset_token_ttl_s: int = 1800
    # Signs provider delivery events (``POST /api/v1/email/events/{provider}``); outside
    # development a placeholder accepts no event at all.
    email_webhook_secret: str = DEV_EMAIL_WEBHOOK_SECRET
    email_webhook_tolerance_s: int = 300
    email_history_max_page: int = 100
    # How often the email group looks for tournaments about to start and streaks to remind
    # of, and how long before a tournament's start its entrants are told.
    email_reminder_interval_s: float = 300.0
    email_tournament_lead_s: int = 900
    email_retention_days: int = 365

    # -- derived views ---------------------------------------------------

    @property
    def is_development(self) -> bool:
        return self.environment in {"development", "test"}

    @property
    def sql_url(self) -> str:
        """The primary database URL; an embedded SQLite file when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'typogram.sqlite3'}"

    @property
    def uses_redis(self) -> bool:
        """Cache, pub/sub and queues on Redis (a URL, or sentinels naming the master)."""
        return bool(self.redis_url or self.redis_sentinels)

    @property
    def smtp_tls_required(self) -> bool:
        """STARTTLS required on ``smtp://``: ``smtp_require_tls``, or by the environment."""
        if self.smtp_require_tls:
            return self.smtp_require_tls.strip().lower() in {"1", "true", "yes", "on"}
        return not self.is_development

    @property
    def site_url(self) -> str:
        """Where links in e-mail point: ``public_url``, else this host's REST port."""
        return self.public_url or f"http://{self.host}:{self.http_port}"

    @property
    def uses_mysql(self) -> bool:
        return self.sql_url.startswith(("mysql://", "mysql+aiomysql://", "mariadb://"))

    def validate(self) -> Settings:
        """Refuse settings that cannot run; returns self for chaining."""
        if not self.is_development and self.jwt_secret in PLACEHOLDER_SECRETS:
            raise SettingsError(
                "TYPOGRAM_JWT_SECRET is missing or a placeholder; set a long random secret "
                f"in the environment (environment={self.environment!r})"
            )
        if not self.is_development and len(self.jwt_secret) < 32:
            raise SettingsError("TYPOGRAM_JWT_SECRET must be at least 32 characters")
        if not self.sql_url.startswith(
            ("sqlite://", "mysql://", "mysql+aiomysql://", "mariadb://")
        ):
            raise SettingsError(
                f"TYPOGRAM_DATABASE_URL must start with sqlite:// or mysql://, got {self.sql_url!r}"
            )
        if self.public_url and (
            not self.public_url.startswith(("https://", "http://")) or self.public_url.endswith("/")
        ):
            raise SettingsError(
                f"TYPOGRAM_PUBLIC_URL must be http(s)://host[/path] without a trailing slash, "
                f"got {self.public_url!r}"
            )
        if self.archive_url and not self.archive_url.startswith(("file://", "s3://")):
            raise SettingsError(
                f"TYPOGRAM_ARCHIVE_URL must start with file:// or s3://, got {self.archive_url!r}"
            )
        if self.redis_sentinels and self.redis_url.startswith("unix://"):
            raise SettingsError("TYPOGRAM_REDIS_SENTINELS needs a redis:// or rediss:// URL")
        for address in self.redis_sentinels:
            host, _, port = address.rpartition(":")
            if host and not port.isdigit():
                raise SettingsError(f"TYPOGRAM_REDIS_SENTINELS: not host:port: {address!r}")
        self._validate_payments()
        if self.unavailable_retry_after_s < 1:
            raise SettingsError("TYPOGRAM_UNAVAILABLE_RETRY_AFTER_S must be at least 1")
        if self.ws_send_buffer_bytes < 0:
            raise SettingsError("TYPOGRAM_WS_SEND_BUFFER_BYTES must be 0 (the kernel's) or more")
        self._validate_security()
        if not 0 < self.ws_token_check_s <= 60:
            raise SettingsError(
                f"TYPOGRAM_WS_TOKEN_CHECK_S must be in (0, 60], got {self.ws_token_check_s!r}"
            )
        for name in (
            "ws_max_connections_per_ip_before_hello",
            "ws_max_connections_per_ip",
            "ws_max_connections_per_user",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"TYPOGRAM_{name.upper()} must be at least 1")
        self._validate_mail()
        for name in ("http_port", "ws_port", "metrics_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"TYPOGRAM_{name.upper()} out of range: {port}")
        return self

    def _validate_security(self) -> None:
        from typogram.proxies import trusted_networks

        try:
            trusted_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"TYPOGRAM_TRUSTED_PROXIES: {exc}") from exc
        if not 0 <= self.password_min_score <= 4:
            raise SettingsError("TYPOGRAM_PASSWORD_MIN_SCORE must be 0..4 (a zxcvbn score)")
        if self.metrics_token and len(self.metrics_token) < 16:
            raise SettingsError("TYPOGRAM_METRICS_TOKEN must be at least 16 characters")
        if self.metrics_port and self.metrics_port in (self.http_port, self.ws_port):
            raise SettingsError("TYPOGRAM_METRICS_PORT must differ from the HTTP and WS ports")
        if self.metrics_port and not self.metrics_token and not _is_loopback(self.metrics_host):
            raise SettingsError(
                "TYPOGRAM_METRICS_HOST is not a loopback address: set TYPOGRAM_METRICS_TOKEN "
                "so only scrapers presenting it read /metrics"
            )

    def _validate_payments(self) -> None:
        if self.payments_provider not in PAYMENT_PROVIDERS:
            raise SettingsError(
                "TYPOGRAM_PAYMENTS_PROVIDER must be sandbox or stripe, "
                f"got {self.payments_provider!r}"
            )
        # The sandbox refuses to start outside development (``payments.sandbox``).
        if self.is_development or self.payments_provider != "stripe":
            return
        if self.payments_webhook_secret in PLACEHOLDER_SECRETS:
            raise SettingsError("TYPOGRAM_PAYMENTS_WEBHOOK_SECRET is missing or a placeholder")
        if not self.payments_stripe_api_key:
            raise SettingsError("TYPOGRAM_PAYMENTS_STRIPE_API_KEY is required for stripe")

    def _validate_mail(self) -> None:
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError(
                f"TYPOGRAM_SMTP_URL must start with smtp:// or smtps://, got {self.smtp_url!r}"
            )
        if self.smtp_require_tls.strip().lower() not in {
            "",
            "1",
            "0",
            "true",
            "false",
            "yes",
            "no",
            "on",
            "off",
        }:
            raise SettingsError("TYPOGRAM_SMTP_REQUIRE_TLS must be true or false")
        if "\r" in self.mail_from or "\n" in self.mail_from or "@" not in self.mail_from:
            raise SettingsError(f"TYPOGRAM_MAIL_FROM is not an address: {self.mail_from!r}")
        if self.email_max_attempts < 1:
            raise SettingsError("TYPOGRAM_EMAIL_MAX_ATTEMPTS must be at least 1")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn a TOML or environment value into the type of the field's default."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, list | tuple):
                return tuple(str(item) for item in raw)
            return tuple(part.strip() for part in str(raw).split(",") if part.strip())
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot read {raw!r}") from exc


def load(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from defaults, a TOML file, the environment and overrides."""
    env = os.environ if env is None else env
    defaults = Settings()
    values: dict[str, Any] = {}
    path = config_file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise SettingsError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
        known = {f.name for f in fields(Settings)}
        for key, raw in _flatten(document).items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, raw, getattr(defaults, key))
    for f in fields(Settings):
        raw_env = env.get(f"{ENV_PREFIX}{f.name.upper()}")
        if raw_env is not None:
            values[f.name] = _coerce(f.name, raw_env, getattr(defaults, f.name))
    # The issue-facing alias: a list of replicas may also come as TYPOGRAM_DATABASE_REPLICAS.
    if (replicas := env.get(f"{ENV_PREFIX}DATABASE_REPLICAS")) is not None:
        values["database_replica_urls"] = _coerce("database_replicas", replicas, ())
    values.update(overrides)
    return Settings(**values).validate()


def _flatten(document: Mapping[str, Any]) -> dict[str, Any]:
    """``[http] port = 1`` and ``http_port = 1`` mean the same setting."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                flat[f"{key}_{inner}"] = inner_value
        else:
            flat[key] = value
    return flat
