"""Benchmarks of consent_api against a bare Flask app served the same way; see bench/README.md."""
