"""The WSGI entry point production servers import: ``consent_api.web.wsgi:app``.

On shutdown the store is closed once the server has finished its requests. granian stops a
worker on SIGTERM by draining its connections and returning; the worker process then ends
through multiprocessing's exit hooks (its atexit handlers never run), so the close is a
multiprocessing finalizer, which also runs at a normal interpreter exit (gunicorn, flask run).
"""

import logging
import multiprocessing.util
import sys

from consent_api.web import requestlog
from consent_api.web.app import create_app

# Each SQLite call releases the GIL, and a thread taking it back waits up to the switch
# interval while another thread runs Python. At the default 5 ms that wait dominated a check's
# p99 and the group-commit writer's turn (measured with 8 blocking threads per worker); 1 ms
# keeps both short for a small cost in switches.
sys.setswitchinterval(0.001)
app = create_app()
log_lines = requestlog.write_in_background()


def _close_store() -> None:
    app.extensions["consent_api.deps"].store.close()
    logging.getLogger("consent_api").info("worker stopping: requests finished, store closed")


multiprocessing.util.Finalize(app, _close_store, exitpriority=100)
multiprocessing.util.Finalize(log_lines, log_lines.close, exitpriority=50)  # after the store's last line
