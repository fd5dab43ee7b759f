"""The Kang PisMan vocabulary shared by every component: site types, materials, streams, categories."""

from __future__ import annotations

from enum import StrEnum

# Ids of sites, devices, districts and accounts: they appear in MQTT topics, URLs and file names.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# A city id is shorter: it prefixes ids and names of its own.
CITY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
# Every topic of the v1 protocol starts here: pisman/v1/<site_id>/<device_id>/<kind> (docs/protocol.md).
TOPIC_ROOT = "pisman/v1"


class SiteType(StrEnum):
    """What kind of place a site is: waste bank (unit or central), depot (TPS), facility, landfill gate."""

    WASTE_BANK = "waste_bank"
    WASTE_BANK_HUB = "waste_bank_hub"
    DEPOT = "depot"
    PROCESSING = "processing"
    LANDFILL = "landfill"


class DeviceKind(StrEnum):
    """What kind of instrument a device is."""

    WEIGHBRIDGE = "weighbridge"
    PLATFORM_SCALE = "platform_scale"
    BIN_SENSOR = "bin_sensor"


class Material(StrEnum):
    """The national composition classes plus hazardous, residual and mixed."""

    FOOD = "food"
    PLASTIC = "plastic"
    WOOD = "wood"
    PAPER = "paper"
    METAL = "metal"
    TEXTILE = "textile"
    GLASS = "glass"
    RUBBER = "rubber"
    OTHER = "other"
    HAZARDOUS = "hazardous"
    RESIDUAL = "residual"
    MIXED = "mixed"


# Organic materials must never reach the landfill (TPA Sarimukti refuses them since 2024).
ORGANIC_MATERIALS: frozenset[Material] = frozenset({Material.FOOD, Material.WOOD})


class Stream(StrEnum):
    """Where a weighed load is in its journey."""

    DEPOSIT = "deposit"
    SEPARATED = "separated"
    MIXED = "mixed"
    TO_PROCESSING = "to_processing"
    PROCESSED_OUTPUT = "processed_output"
    TO_RECYCLER = "to_recycler"
    TO_LANDFILL = "to_landfill"


class Category(StrEnum):
    """Kang PisMan categories; derived on the server from the category_map table, never sent by devices."""

    REDUCE = "reduce"
    SEPARATE = "separate"
    UTILIZE = "utilize"
    RESIDUAL = "residual"


class ProcessKind(StrEnum):
    """What a processing site (TPS3R / TPST) turns waste into."""

    COMPOST = "compost"
    LARVAE = "larvae"
    BIODIGESTER = "biodigester"
    RECYCLING = "recycling"
    RDF = "rdf"


class ReadingKind(StrEnum):
    """The last segment of an MQTT topic: what the payload holds."""

    WEIGHING = "weighing"
    BIN = "bin"
    STATUS = "status"


class Role(StrEnum):
    """API key roles, each including the ones before it."""

    VIEWER = "viewer"
    PLANNER = "planner"
    ADMIN = "admin"


class TargetMetric(StrEnum):
    """Metrics a city sets targets for (values live in the city's data file, never in code)."""

    GENERATION_T = "generation_t"  # waste generated, tonnes per period
    REDUCE_T = "reduce_t"
    SEPARATE_SHARE = "separate_share"  # share of collected tonnage arriving separated
    UTILIZE_T = "utilize_t"
    RESIDUAL_T = "residual_t"
    REDUCTION_SHARE = "reduction_share"  # national B / A
    HANDLING_SHARE = "handling_share"  # national C / A
    LANDFILL_QUOTA_T = "landfill_quota_t"
    KBS_RW = "kbs_rw"  # neighbourhoods (RW) declared Kawasan Bebas Sampah


class DeviceStatus(StrEnum):
    """A device's connection as the API reports it (api/queries/device_status.py holds the rule)."""

    ONLINE = "online"
    OFFLINE = "offline"  # silent for SILENT_INTERVALS reporting intervals, or a last-will 'offline'
    NEVER_SEEN = "never_seen"


class AlertKind(StrEnum):
    """What an alert of GET /v1/alerts is about."""

    FIRE = "fire"
    TILT = "tilt"  # a bin sensor reports its bin tipped over
    LID_OPEN = "lid_open"  # a bin sensor reports its lid left open
    BIN_FULL = "bin_full"
    DEVICE_SILENT = "device_silent"
    LOW_BATTERY = "low_battery"
    ORGANIC_AT_LANDFILL = "organic_at_landfill"


class Severity(StrEnum):
    """How urgent an alert is, most urgent first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class QuarantineStatus(StrEnum):
    """Where a quarantined message stands (the quarantine table's CHECK names the same four)."""

    NEW = "new"
    RETRY = "retry"
    REPROCESSED = "reprocessed"
    DISCARDED = "discarded"


class CoverageStatus(StrEnum):
    """A month's data coverage (docs/national-report.md)."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    IN_PROGRESS = "in_progress"
    FUTURE = "future"
    NO_DATA = "no_data"


# Physical limits used by validation; a single weighing heavier than this is not a real load.
MAX_WEIGHING_KG = 60_000
# A device silent for this many of its reporting intervals is offline.
SILENT_INTERVALS = 3
