"""A Flask (WSGI) app with apytheus: metrics served at /metrics by make_wsgi_app.

python examples/flask_app.py --port 8000
"""

from __future__ import annotations

import argparse

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from apytheus import Histogram, make_wsgi_app

REQUEST_TIME = Histogram("request_duration_seconds", "Time spent in handlers.", ["route"])

flask_app = Flask(__name__)


@flask_app.route("/hello/<name>")
@REQUEST_TIME.labels(route="/hello/<name>")
def hello(name: str) -> str:
    return f"hello {name}"


# Serve the metrics next to the app, as prometheus_client's README does.
app = DispatcherMiddleware(flask_app, {"/metrics": make_wsgi_app()})

if __name__ == "__main__":
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    run_simple("127.0.0.1", parser.parse_args().port, app)
