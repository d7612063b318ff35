"""piccolo's configuration: the engine and every feature's tables app.

piccolo looks its engine up through this module (``PICCOLO_CONF``); ``furrsight.db.setup``
points the engine at the configured database file before any query runs.
"""

from piccolo.conf.apps import AppRegistry

from furrsight.db.engine import Database, new_engine

DB = new_engine()
DATABASE = Database(DB)

# One piccolo app per feature that owns tables, in pipeline order.
APP_REGISTRY = AppRegistry(
    apps=[
        "furrsight.auth.piccolo_app",
        "furrsight.jobs.piccolo_app",
        "furrsight.taxonomy.piccolo_app",
        "furrsight.images.piccolo_app",
        "furrsight.queries.piccolo_app",
        "furrsight.scraping.piccolo_app",
        "furrsight.search.piccolo_app",
        "furrsight.pairs.piccolo_app",
        "furrsight.exports.piccolo_app",
        "furrsight.schedules.piccolo_app",
    ]
)
