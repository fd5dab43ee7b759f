"""simulators component of the Kang PisMan tracker."""
