"""The WSGI entry point production servers import: ``consent_api.web.wsgi:app``."""

from consent_api.web.app import create_app

app = create_app()
