"""consent_api: collect, prove and honour users' consent, per purpose."""

__version__ = "0.1.0"
