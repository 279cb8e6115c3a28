"""What leaves the service for receivers' servers: the addresses a webhook may reach
(addresses.py) and the HTTP POST that delivers it (sender.py)."""
