"""Which simulated devices a city has: one row per instrument, named after its site."""

from __future__ import annotations

from dataclasses import dataclass

from pisman.citydata import City, Site
from pisman.domain import DeviceKind

_SUFFIX = {
    DeviceKind.WEIGHBRIDGE: "wb",
    DeviceKind.PLATFORM_SCALE: "scale",
    DeviceKind.BIN_SENSOR: "bin",
}


@dataclass(frozen=True, slots=True)
class SimDevice:
    """A simulated instrument at a site."""

    device_id: str
    site_id: str
    site_type: str
    kind: DeviceKind

    @property
    def reading_kind(self) -> str:
        """The topic kind its readings go to."""
        return "bin" if self.kind == DeviceKind.BIN_SENSOR else "weighing"


def device_id_for(site_id: str, kind: DeviceKind, n: int) -> str:
    """A stable device id: `<site>-wb1`, `<site>-scale1`, `<site>-bin1`."""
    return f"{site_id}-{_SUFFIX[kind]}{n}"


def devices_for_site(city: City, site: Site) -> list[SimDevice]:
    """The devices at one site: the site's own list, else the city's per-site-type default."""
    kinds = site.devices
    if kinds is None:
        defaults = city.simulation.devices_per_site_type if city.simulation else {}
        kinds = defaults.get(site.type, [])
    counts: dict[DeviceKind, int] = {}
    out = []
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
        out.append(
            SimDevice(device_id_for(site.id, kind, counts[kind]), site.id, site.type.value, kind)
        )
    return out


def city_devices(city: City) -> list[SimDevice]:
    """Every simulated device of the city's active sites, in site order."""
    return [d for s in city.all_sites() if s.active for d in devices_for_site(city, s)]
