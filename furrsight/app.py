"""The Litestar app factory: every feature's routes, the templates, the shared state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dramatiq import Broker
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from prometheus_client.core import Metric

from furrsight import __version__
from furrsight.auth import routes as auth_routes
from furrsight.auth.guards import AUTH_EXCEPTION_HANDLERS, role_guard
from furrsight.auth.state import OPENAPI_SECURITY, auth_middleware, auth_startup
from furrsight.auth.templating import register_template_helpers
from furrsight.backup import routes as backup_routes
from furrsight.db.setup import database_bytes, open_database
from furrsight.exports import routes as exports_routes
from furrsight.images import routes as images_routes
from furrsight.inference import routes as inference_routes
from furrsight.inference.residency import RESIDENCY, IdleSweeper, Residency
from furrsight.jobs import health as jobs_health
from furrsight.jobs import routes as jobs_routes
from furrsight.jobs.broker import create_broker, valkey_client
from furrsight.jobs.routes import JOB_EXCEPTION_HANDLERS
from furrsight.jobs.service import counts_by_kind_status
from furrsight.jobs.status import queue_states
from furrsight.metrics.exposition import gauge
from furrsight.metrics.http import metrics_route, timing_middleware
from furrsight.pairs import routes as pairs_routes
from furrsight.pairs.service import accepted_by_query, status_counts
from furrsight.pipeline import register_tasks
from furrsight.queries import routes as queries_routes
from furrsight.review import routes as review_routes
from furrsight.review.labels import image_labels
from furrsight.runstatus import processes_check
from furrsight.schedules import routes as schedules_routes
from furrsight.scraping import routes as scraping_routes
from furrsight.search import routes as search_routes
from furrsight.search.tagging import breed_image_ids
from furrsight.settings import Settings, load_settings
from furrsight.status import routes as status_routes
from furrsight.store import FileStore
from furrsight.taxonomy import routes as taxonomy_routes
from furrsight.web.api import StrictStructSchema
from furrsight.web.errors import EXCEPTION_HANDLERS
from furrsight.web.headers import add_security_headers
from furrsight.web.health import health_route

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = Path(__file__).resolve().parent / "web" / "static"


def _constant(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


async def scrape_gauges(state: Any) -> list[Metric]:
    """The ``/metrics`` gauges, computed now through each feature's service (cheap grouped counts)."""
    try:
        queues = await queue_states(state.valkey, state.settings)
        up = True
    except Exception:  # the broker is down: the other figures still answer, and broker_up says so
        queues, up = [], False
    pairs = await status_counts()
    families = [
        gauge("furrsight_jobs", "Jobs by kind and status.", ["kind", "status"], await counts_by_kind_status()),
        gauge("furrsight_pairs", "Pairs by status.", ["status"], {(k,): v for k, v in pairs.items()}),
        gauge(
            "furrsight_database_bytes",
            "The SQLite database and its WAL, in bytes.",
            [],
            {(): database_bytes(state.settings)},
        ),
        gauge("furrsight_broker_up", "1 when the broker answered this scrape, else 0.", [], {(): up}),
    ]
    if up:
        families += [
            gauge(
                "furrsight_queue_depth",
                "Messages waiting in each broker queue.",
                ["queue"],
                {(q.name,): q.depth for q in queues},
            ),
            gauge(
                "furrsight_queue_delayed",
                "Delayed messages (retries, scheduled) of each queue.",
                ["queue"],
                {(q.name,): q.delayed for q in queues},
            ),
            gauge(
                "furrsight_queue_oldest_age_seconds",
                "Age of the oldest message waiting in each queue (none waiting: no sample).",
                ["queue"],
                {(q.name,): q.oldest_age_s for q in queues if q.oldest_age_s is not None},
            ),
        ]
    return families


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    store = FileStore(settings.data_path)
    broker = create_broker(settings)
    register_tasks(broker, settings)
    residency = Residency(device="cpu")  # the web process never takes GPU memory: CPU sessions only
    RESIDENCY.device = "cpu"  # and neither does any code here that would reach for the worker's default
    sweeper = IdleSweeper(residency, settings.search.idle_unload_s)

    async def on_startup(app: Litestar) -> None:
        open_database(settings)
        app.state.valkey = valkey_client(settings)
        sweeper.start()

    async def on_shutdown(app: Litestar) -> None:
        sweeper.stop()
        residency.release_all()
        await app.state.valkey.aclose()
        broker.close()

    app = Litestar(
        route_handlers=[
            health_route({**jobs_health.CHECKS, "processes": processes_check}),
            metrics_route(scrape_gauges, settings.metrics.allow),
            jobs_routes.router,
            images_routes.router,
            inference_routes.router,
            search_routes.router,
            auth_routes.router,
            queries_routes.router,
            scraping_routes.router,
            taxonomy_routes.router,
            pairs_routes.router,
            review_routes.router,
            exports_routes.router,
            status_routes.router,
            backup_routes.router,
            schedules_routes.router,
            create_static_files_router(path="/static", directories=[STATIC], opt={"public": True}),
        ],
        dependencies={
            "settings": _constant(settings),
            "store": _constant(store),
            "broker": _constant(broker),
            "residency": _constant(residency),
            "image_subsets": _constant({"breed": breed_image_ids}),  # later stages' gallery filters
            "image_labels": _constant(image_labels),  # later stages' notes on gallery cards and image pages
            "query_pair_counts": _constant(accepted_by_query),  # the queries page's accepted pairs
        },
        signature_namespace={"Settings": Settings, "FileStore": FileStore, "Broker": Broker, "Residency": Residency},
        on_startup=[on_startup, auth_startup],
        middleware=[timing_middleware, *auth_middleware(settings)],
        guards=[role_guard],
        on_shutdown=[on_shutdown],
        before_send=[add_security_headers],
        plugins=[HTMXPlugin(), StrictStructSchema()],
        template_config=TemplateConfig(
            directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=register_template_helpers
        ),
        exception_handlers={
            **EXCEPTION_HANDLERS,
            **JOB_EXCEPTION_HANDLERS,
            **AUTH_EXCEPTION_HANDLERS,
            **schedules_routes.SCHEDULE_EXCEPTION_HANDLERS,
        },
        # only /schema/openapi.json: the interactive viewers load scripts from CDNs (no CSP allows them)
        openapi_config=OpenAPIConfig(
            title="FurrSight",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            **OPENAPI_SECURITY,
        ),
    )
    app.state.settings = settings
    app.state.store = store
    app.state.broker = broker
    app.state.residency = residency
    return app
