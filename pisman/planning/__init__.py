"""Collection planning: which depots to empty tomorrow, by which truck, in which order (issue 12).

Pure core: inputs are plain dataclasses (model.py), distances come from a pluggable matrix
(distance.py), bins are chosen from their forecasts (select.py) and routed with OR-Tools
(solve.py). No database, no clock: the API and the simulator gather the inputs.
"""

from pisman.planning.distance import DistanceMatrix, HaversineMatrix
from pisman.planning.model import (
    BinState,
    Landfill,
    Plan,
    PlanInput,
    PlannedStop,
    Point,
    Stop,
    Trip,
    TruckRoute,
    TruckSpec,
    Uncovered,
)
from pisman.planning.select import select_stops
from pisman.planning.solve import solve

__all__ = [
    "BinState",
    "DistanceMatrix",
    "HaversineMatrix",
    "Landfill",
    "Plan",
    "PlanInput",
    "PlannedStop",
    "Point",
    "Stop",
    "Trip",
    "TruckRoute",
    "TruckSpec",
    "Uncovered",
    "select_stops",
    "solve",
]
