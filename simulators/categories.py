"""The simulator's own category arithmetic: a re-implementation of sql/003's default category_map rules."""

from __future__ import annotations

from dataclasses import dataclass

# These mirror pisman_seed_category_map() (sql/003_category_map.sql, replaced in
# sql/024_to_recycler_fate.sql: the defaults every new
# city gets). The simulator re-implements them rather than reading the table so that a report
# can be computed without a database; the reconciliation test compares the two, so a change to
# the SQL defaults that is not made here fails that test.
_BANKS = frozenset({"waste_bank", "waste_bank_hub"})
MEASURES = ("reduce", "utilize", "residual", "separate", "collected")


@dataclass(frozen=True, slots=True)
class Contribution:
    """How one weighing counts: grams per measure (utilize may be negative: facility residue)."""

    reduce: int = 0
    utilize: int = 0
    residual: int = 0
    separate: int = 0
    collected: int = 0


def classify(
    site_type: str, stream: str, material: str, from_own_site: bool, net_g: int
) -> Contribution:
    """The grams one weighing adds to each measure under the default rules."""
    own = from_own_site
    reduce = utilize = residual = separate = collected = 0
    if site_type in _BANKS and stream == "deposit" and not own:
        reduce = net_g
    elif site_type == "processing" and stream == "to_processing":
        utilize = net_g
    elif site_type == "processing" and stream == "to_landfill":
        utilize = -net_g
    elif site_type == "depot" and stream == "to_recycler":
        utilize = net_g  # sold to recyclers (pelapak) from the depot: recycled, national B
    elif site_type == "landfill" and stream == "to_landfill":
        residual = net_g
    if not own and (
        (site_type in _BANKS and stream == "deposit")
        or (site_type == "depot" and stream in ("separated", "mixed"))
        or (site_type == "processing" and stream == "to_processing")
        or (site_type == "landfill" and stream == "to_landfill")
    ):
        collected = net_g
    if (
        not own
        and material != "mixed"
        and (
            (site_type in _BANKS and stream == "deposit")
            or (site_type == "depot" and stream == "separated")
            or (site_type == "processing" and stream == "to_processing")
        )
    ):
        separate = net_g
    return Contribution(reduce, utilize, residual, separate, collected)
