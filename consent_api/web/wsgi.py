"""The WSGI entry point production servers import: ``consent_api.web.wsgi:app``."""

import sys

from consent_api.web.app import create_app

# Each SQLite call releases the GIL, and a thread taking it back waits up to the switch
# interval while another thread runs Python. At the default 5 ms that wait dominated a check's
# p99 and the group-commit writer's turn (measured with 8 blocking threads per worker); 1 ms
# keeps both short for a small cost in switches.
sys.setswitchinterval(0.001)
app = create_app()
