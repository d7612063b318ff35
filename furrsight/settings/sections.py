"""The settings' sections: one typed struct per feature, each field with its one-line
description (``Doc``), and the whole ``Settings``. How they are read: ``loading``."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any

import msgspec


def Doc(text: str) -> msgspec.Meta:  # noqa: N802  (reads like an annotation)
    return msgspec.Meta(description=text)


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "furrsight")


class JobSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    worker_threads: Annotated[int, Doc("Threads of the default-queue worker process."), msgspec.Meta(ge=1)] = 2
    heartbeat_timeout_ms: Annotated[
        int, Doc("A worker silent this long (ms) is dead and its messages are redelivered.")
    ] = 5000
    maintenance_chance: Annotated[
        int, Doc("Broker calls per million that sweep dead workers (higher: faster redelivery).")
    ] = 100_000
    log_tail_lines: Annotated[int, Doc("Lines of a job's log shown on its page.")] = 200


class IngestSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_file_bytes: Annotated[int, Doc("Largest accepted image file, in bytes.")] = 50 * 1024 * 1024
    max_upload_bytes: Annotated[int, Doc("Largest accepted upload request, in bytes.")] = 512 * 1024 * 1024
    thumb_size: Annotated[int, Doc("Longest side of a thumbnail, in pixels.")] = 320
    max_pixels: Annotated[
        int, Doc("Most pixels (width x height, read from the header) an image may declare: bombs are refused.")
    ] = 100_000_000
    min_side: Annotated[int, Doc("Images with a shorter side below this many pixels are refused.")] = 64
    small_side: Annotated[int, Doc("Images with a shorter side below this are flagged `small`.")] = 400
    blur_threshold: Annotated[
        float, Doc("Variance of the Laplacian (at 512 px) below which an image is flagged `blurry`.")
    ] = 60.0
    max_aspect: Annotated[float, Doc("Long side / short side above which an image is flagged `extreme_aspect`.")] = 3.0
    near_dup_distance: Annotated[
        int, Doc("Largest Hamming distance of two 64-bit perceptual hashes in one near-duplicate group.")
    ] = 6
    split_collages: Annotated[bool, Doc("Detect two-panel before/after collages and split them into two images.")] = (
        True
    )
    concurrency: Annotated[
        int, Doc("Files a job keeps in flight through ingest (at least two per worker process)."), msgspec.Meta(ge=1)
    ] = 3
    processes: Annotated[
        int,
        Doc("Worker processes decoding images for import and scrape jobs (0: one per core; 1: threads only)."),
        msgspec.Meta(ge=0),
    ] = 0
    collage_min_confidence: Annotated[float, Doc("Least detection confidence (0-1) for an automatic split.")] = 0.6
    collage_captions: Annotated[
        bool, Doc("Read before/after captions on collages with OCR (Tesseract); off: the layout alone decides.")
    ] = True


class ScrapingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allowed_networks: Annotated[
        list[str], Doc("CIDRs that scrapers may fetch although private or loopback (default: none).")
    ] = msgspec.field(default_factory=list)
    user_agent: Annotated[str, Doc("User-Agent sent by scrapers.")] = (
        "FurrSight/0.1 (+https://github.com/furrsight; dataset research crawler)"
    )
    openverse_url: Annotated[str, Doc("Base URL of the Openverse API (or a mirror).")] = "https://api.openverse.org"
    wikimedia_url: Annotated[str, Doc("Base URL of the Wikimedia Commons MediaWiki API.")] = (
        "https://commons.wikimedia.org/w/api.php"
    )
    reddit_url: Annotated[str, Doc("Base URL of Reddit: its OAuth token endpoint and post links.")] = (
        "https://www.reddit.com"
    )
    searxng_url: Annotated[str, Doc("Base URL of the lab's SearXNG instance (empty: plugin unusable).")] = ""
    contact: Annotated[
        str, Doc("How a service's operators reach the lab (email or URL), added to the User-Agent of API requests.")
    ] = ""
    openverse_client_id: Annotated[
        str, Doc("Client id of an Openverse registered application (empty: anonymous, 20 results a page).")
    ] = ""
    openverse_client_secret: Annotated[str, Doc("Client secret of that Openverse application (never shown).")] = ""
    reddit_client_id: Annotated[str, Doc("Client id of a Reddit app (script or web type): Reddit's API needs one.")] = (
        ""
    )
    reddit_client_secret: Annotated[str, Doc("Client secret of that Reddit app (never shown).")] = ""
    reddit_username: Annotated[str, Doc("Reddit account that registered the app, named in the User-Agent.")] = ""
    reddit_api_url: Annotated[str, Doc("Base URL of Reddit's OAuth API.")] = "https://oauth.reddit.com"
    per_host_delay: Annotated[float, Doc("Seconds between two requests to the same host."), msgspec.Meta(ge=0)] = 1.0
    per_host_concurrency: Annotated[int, Doc("Requests in flight to one host at a time."), msgspec.Meta(ge=1)] = 2
    concurrency: Annotated[
        int,
        Doc("Requests on the wire at once per scrape job, all hosts (waiting for a host's turn does not count)."),
        msgspec.Meta(ge=1),
    ] = 128
    connect_timeout: Annotated[float, Doc("Seconds to wait for a connection.")] = 10.0
    read_timeout: Annotated[float, Doc("Seconds to wait for the next bytes of an answer.")] = 30.0
    request_deadline: Annotated[float, Doc("Longest one download may take in all (a slow drip is cut), seconds.")] = (
        300.0
    )
    max_bytes: Annotated[int, Doc("Largest response body a scraper downloads, in bytes.")] = 50 * 1024 * 1024
    retries: Annotated[int, Doc("Retries of a failed request (429, 5xx, network errors)."), msgspec.Meta(ge=0)] = 3
    max_retry_after: Annotated[float, Doc("Longest Retry-After (seconds) honoured before giving up.")] = 120.0
    max_redirects: Annotated[int, Doc("Redirects followed per request, each re-checked.")] = 5
    plugin_dirs: Annotated[list[str], Doc("Extra folders of scraper plugin modules (comma-separated).")] = (
        msgspec.field(default_factory=list)
    )
    disabled_plugins: Annotated[list[str], Doc("Scraper plugins not offered (comma-separated names).")] = msgspec.field(
        default_factory=list
    )
    plugin_settings: Annotated[dict[str, dict[str, Any]], Doc("Per-plugin settings (TOML table per name).")] = (
        msgspec.field(default_factory=dict)
    )


class QuerySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    llm_model_path: Annotated[str, Doc("A GGUF chat model for query generation (empty: the installed `llm`).")] = ""
    llm_context: Annotated[int, Doc("Context length the query LLM is loaded with.")] = 2048
    llm_max_tokens: Annotated[int, Doc("Most tokens one generation answer may use.")] = 512
    llm_threads: Annotated[int, Doc("CPU threads of the query LLM (0: llama.cpp's default).")] = 0


class SearchSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: Annotated[str, Doc("Active image model: embeddings, similar and text search, breeds.")] = (
        "efficientnet-lite0"
    )
    batch_size: Annotated[int, Doc("Images per inference batch."), msgspec.Meta(ge=1)] = 16
    not_a_dog_below: Annotated[float, Doc("Dog probability under which a photo is flagged 'not a dog'.")] = 0.5
    prefilter_factor: Annotated[
        int, Doc("Bit-prefilter candidates per result (at least 100) before exact re-scoring.")
    ] = 10
    near_dup_distance: Annotated[float, Doc("Cosine distance under which two images are near-duplicates.")] = 0.05
    idle_unload_s: Annotated[
        int,
        Doc("Seconds after which an unused model (image, text, LLM, VLM) leaves a process; 0: never."),
        msgspec.Meta(ge=0),
    ] = 600


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    session_idle_minutes: Annotated[int, Doc("A session unused this long (minutes) ends."), msgspec.Meta(ge=1)] = 120
    session_absolute_hours: Annotated[
        int, Doc("A session ends this long (hours) after sign-in, used or not."), msgspec.Meta(ge=1)
    ] = 24
    local_login: Annotated[bool, Doc("Allow sign-in with a local user name and password.")] = True
    oidc_issuer: Annotated[str, Doc("OpenID Connect issuer URL; empty: single sign-on is off.")] = ""
    oidc_discovery_url: Annotated[
        str, Doc("OIDC discovery document URL (default: issuer + /.well-known/openid-configuration).")
    ] = ""
    oidc_client_id: Annotated[str, Doc("OIDC client id registered with the provider.")] = ""
    oidc_client_secret: Annotated[str, Doc("OIDC client secret registered with the provider.")] = ""
    oidc_scopes: Annotated[list[str], Doc("OIDC scopes asked for (comma-separated).")] = msgspec.field(
        default_factory=lambda: ["openid", "profile", "email"]
    )
    oidc_redirect_base: Annotated[
        str, Doc("Public base URL of FurrSight for the OIDC callback (default: from the request).")
    ] = ""
    oidc_role_claim: Annotated[
        str, Doc("Claim (ID token or UserInfo) holding a role name (viewer, curator, admin); empty: none.")
    ] = ""
    oidc_groups_claim: Annotated[str, Doc("Claim (ID token or UserInfo) holding the user's groups.")] = "groups"
    oidc_group_roles: Annotated[
        list[str], Doc("Group to role mapping as group=role entries (comma-separated); the highest role wins.")
    ] = msgspec.field(default_factory=list)
    oidc_default_role: Annotated[str, Doc("Role of an OIDC account when neither claim nor group names one.")] = "viewer"
    oidc_auto_create: Annotated[bool, Doc("Create an account at a user's first OIDC sign-in.")] = True
    oidc_button_label: Annotated[str, Doc("Name on the login page's 'Sign in with …' button.")] = "single sign-on"
    max_failures_per_address: Annotated[int, Doc("Failed sign-ins allowed per client address per window.")] = 20
    max_failures_per_account: Annotated[int, Doc("Failed sign-ins allowed per account name per window.")] = 5
    failure_window_seconds: Annotated[int, Doc("Length of the failed sign-in window, in seconds.")] = 900
    trusted_proxies: Annotated[
        list[str], Doc("Proxy addresses whose X-Forwarded-For/-Proto headers are believed (comma-separated).")
    ] = msgspec.field(default_factory=lambda: ["127.0.0.1"])


class TaxonomySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    match_threshold: Annotated[
        float,
        Doc("Fuzzy score (0-100) free text needs to resolve to a breed or service; below it: unknown."),
        msgspec.Meta(ge=50, le=100),
    ] = 86.0


class PairSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    same_dog_min: Annotated[
        float, Doc("Embedding cosine at or above which two photos of one post are taken to show the same dog.")
    ] = 0.6
    same_photo_min: Annotated[
        float, Doc("Embedding cosine at or above which two photos are the same photo (a re-post), never a pair.")
    ] = 0.97
    min_dog_probability: Annotated[
        float, Doc("Dog probability (default model) an image needs to be mined into a pair."), msgspec.Meta(ge=0, le=1)
    ] = 0.5
    mine_similar: Annotated[bool, Doc("Also mine `similar` pairs: same author or site, same dog by embedding.")] = False
    similar_min: Annotated[float, Doc("Embedding cosine a `similar` pair needs (same author or site).")] = 0.8
    similar_neighbours: Annotated[
        int, Doc("Nearest neighbours looked at per new image for `similar` pairs."), msgspec.Meta(ge=1, le=200)
    ] = 10
    max_group: Annotated[
        int, Doc("Groups (posts, pages) with more images than this are not mined (index pages)."), msgspec.Meta(ge=2)
    ] = 60
    analyse_after_mining: Annotated[bool, Doc("Queue the analysis of new candidates when mining finds some.")] = True
    same_dog_reject_below: Annotated[
        float, Doc("Offline analysis: a same-dog score under this rejects the pair (not the same dog).")
    ] = 0.45
    vlm_model: Annotated[str, Doc("The vision-language model that analyses pairs (empty: the installed `vlm`).")] = ""
    prompt_version: Annotated[str, Doc("The analysis prompt version (empty: the newest shipped).")] = ""


class ReviewSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    lease_s: Annotated[
        int, Doc("Seconds a pair shown to one reviewer stays out of everyone else's queue."), msgspec.Meta(ge=5)
    ] = 600
    dashboard_cache_s: Annotated[
        int, Doc("Seconds the dashboard's counts are cached (a review or bulk action clears them)."), msgspec.Meta(ge=0)
    ] = 60


class ExportSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    licenses: Annotated[
        list[str], Doc("Licence families (or exact ids) allowed in dataset versions (comma-separated).")
    ] = msgspec.field(default_factory=lambda: ["public-domain", "cc0", "cc-by", "cc-by-sa"])
    split_ratios: Annotated[
        list[float], Doc("Default train, validation, test shares of a version (comma-separated).")
    ] = msgspec.field(default_factory=lambda: [0.8, 0.1, 0.1])
    split_seed: Annotated[str, Doc("Default split seed: the order new components are placed in.")] = "furrsight"
    leak_cosine: Annotated[
        float, Doc("Embedding cosine at or above which two images are near-duplicates for splits and the leak check.")
    ] = 0.95
    leak_hamming: Annotated[
        int, Doc("Perceptual-hash Hamming distance at or below which two images are near-duplicates (splits, leaks).")
    ] = 6
    max_side: Annotated[
        int,
        Doc("Longest side of exported images in pixels (larger ones are resized); 0: as stored."),
        msgspec.Meta(ge=0),
    ] = 0
    jpeg_quality: Annotated[
        int,
        Doc("JPEG quality of images an export re-encodes (resized, or not stored as JPEG)."),
        msgspec.Meta(ge=1, le=100),
    ] = 92
    parquet_shard_pairs: Annotated[int, Doc("Pairs per hf-parquet file."), msgspec.Meta(ge=1)] = 1000
    parquet_row_group: Annotated[
        int, Doc("Pairs per Parquet row group (images: keep it small)."), msgspec.Meta(ge=1)
    ] = 100
    webdataset_shard_pairs: Annotated[int, Doc("Pairs (samples) per WebDataset tar shard."), msgspec.Meta(ge=1)] = 1000
    known_limits: Annotated[str, Doc("A paragraph for the dataset card's known limits (empty: the built-in one).")] = ""


class StatusSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    min_free_gb: Annotated[
        float, Doc("Free disk space (GB) under the data directory below which status warns."), msgspec.Meta(ge=0)
    ] = 5.0
    forget_dead_worker_s: Annotated[
        int, Doc("Seconds a worker that stopped heart-beating stays reported as dead."), msgspec.Meta(ge=1)
    ] = 86_400


class MetricsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    allow: Annotated[
        list[str],
        Doc("CIDRs whose clients may read /metrics without signing in (comma-separated; default: none)."),
    ] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for network in self.allow:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"metrics.allow: {network!r} is not a network (CIDR such as 10.0.0.0/8)") from exc


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    data_dir: Annotated[str, Doc("Directory holding the database, files, models, exports and logs.")] = msgspec.field(
        default_factory=_default_data_dir
    )
    host: Annotated[str, Doc("Address the web process listens on.")] = "127.0.0.1"
    port: Annotated[int, Doc("Port the web process listens on."), msgspec.Meta(ge=0, le=65535)] = 8000
    broker_url: Annotated[str, Doc("Valkey/Redis URL of the broker; empty: `furrsight up` starts a private one.")] = ""
    broker_namespace: Annotated[str, Doc("Key prefix of the broker's queues in Valkey.")] = "furrsight"
    import_roots: Annotated[list[str], Doc("Server folders that folder imports may read below (comma-separated).")] = (
        msgspec.field(default_factory=list)
    )
    page_size: Annotated[int, Doc("Items per page in the gallery and lists.")] = 48
    db_busy_timeout_ms: Annotated[int, Doc("How long a SQLite writer waits for the lock, in ms.")] = 10_000
    log_level: Annotated[str, Doc("Log level of all processes (DEBUG, INFO, WARNING).")] = "INFO"
    jobs: Annotated[JobSettings, Doc("Background jobs and workers.")] = msgspec.field(default_factory=JobSettings)
    ingest: Annotated[IngestSettings, Doc("Limits and derived images of ingest.")] = msgspec.field(
        default_factory=IngestSettings
    )
    scraping: Annotated[ScrapingSettings, Doc("Scrapers and their HTTP client.")] = msgspec.field(
        default_factory=ScrapingSettings
    )
    queries: Annotated[QuerySettings, Doc("Search-query generation (phase 1).")] = msgspec.field(
        default_factory=QuerySettings
    )
    auth: Annotated[AuthSettings, Doc("Sign-in, sessions, single sign-on and throttling.")] = msgspec.field(
        default_factory=AuthSettings
    )
    taxonomy: Annotated[TaxonomySettings, Doc("The label vocabulary: breeds and services.")] = msgspec.field(
        default_factory=TaxonomySettings
    )
    pairs: Annotated[PairSettings, Doc("Mining and analysing before/after pairs.")] = msgspec.field(
        default_factory=PairSettings
    )
    review: Annotated[ReviewSettings, Doc("The review queue and the dashboard.")] = msgspec.field(
        default_factory=ReviewSettings
    )
    search: Annotated[SearchSettings, Doc("Models, embeddings, similarity and breed search.")] = msgspec.field(
        default_factory=SearchSettings
    )
    exports: Annotated[ExportSettings, Doc("Dataset versions, splits and exports.")] = msgspec.field(
        default_factory=ExportSettings
    )
    status: Annotated[StatusSettings, Doc("`furrsight status`, the status page and /health.")] = msgspec.field(
        default_factory=StatusSettings
    )
    metrics: Annotated[MetricsSettings, Doc("The Prometheus /metrics endpoint.")] = msgspec.field(
        default_factory=MetricsSettings
    )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def db_path(self) -> Path:
        return self.data_path / "furrsight.db"
