"""The consent-api commands, one module per kind; consent_api.cli parses the command line and
calls them. Every command takes the parsed arguments and the Settings, and returns the exit code."""
