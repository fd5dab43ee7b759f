"""dashboard component of the Kang PisMan tracker."""
