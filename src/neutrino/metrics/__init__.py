"""Prometheus metrics: the server's own (server.py) and the agents' (agent.py), which the agents send in their
reports and the server relays on its /metrics, so one scrape target per server covers a deployment."""
