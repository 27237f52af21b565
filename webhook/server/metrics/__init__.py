"""The webhook's Prometheus metrics (registry.py), the per-request series kept as plain numbers
(requestmetrics.py), and /metrics written as upstream's Go client writes it (exposition.py)."""
