"""api component of the Kang PisMan tracker."""
