"""The baseline: a bare Flask "hello JSON" app, the ceiling of this framework on this server."""

import sys

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"hello": "world"}


# Answered on the server's event loop like consent_api's hot reads (consent_api/web/rsgi.py),
# so the baseline and the checks go through the same path.
app.extensions["consent_api.inline"] = lambda environ: environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] == "/"


if __name__ == "__main__":
    from consent_api.commands.processes import serve_wsgi

    port, workers, threads = (int(a) for a in sys.argv[1:4])
    serve_wsgi("bench.bare_app:app", "127.0.0.1", port, workers, threads, preload="flask")
