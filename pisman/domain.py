"""The Kang PisMan vocabulary shared by every component: site types, materials, streams, categories."""

from __future__ import annotations

from enum import StrEnum


class SiteType(StrEnum):
    """What kind of place a site is (DOMAIN.md, "Places")."""

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


# Physical limits used by validation; a single weighing heavier than this is not a real load.
MAX_WEIGHING_KG = 60_000
DEFAULT_BIN_FULL_THRESHOLD = 0.80
# A device silent for this many of its reporting intervals is offline.
SILENT_INTERVALS = 3
