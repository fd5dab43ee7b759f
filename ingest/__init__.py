"""ingest component of the Kang PisMan tracker."""
