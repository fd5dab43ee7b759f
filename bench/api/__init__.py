"""API benchmark: one year of Bandung-scale history, tonnage/progress latency beside raw SQL, XLSX time."""
