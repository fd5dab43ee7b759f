"""Every export column declared once: key, Indonesian and English header, type (and so its format)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")
ColumnType = Literal["text", "tonnes", "kg", "percent", "count", "date", "rupiah"]

# The XLSX number format of each type: a header word never picks a format.
NUMBER_FORMATS: dict[ColumnType, str] = {
    "text": "General",
    "tonnes": "#,##0.000",
    "kg": "#,##0.000",
    "percent": "0.00%",
    "count": "#,##0",
    "date": "yyyy-mm-dd",
    "rupiah": "#,##0",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column (or, in a transposed sheet, one row): its key, headers and type."""

    key: str
    id: str
    en: str
    type: ColumnType

    def header(self, lang: Lang) -> str:
        """The header in the export's language."""
        return self.id if lang == "id" else self.en

    @property
    def number_format(self) -> str:
        """The XLSX number format for this column's cells."""
        return NUMBER_FORMATS[self.type]


def col(key: str, id_: str, en: str, type_: ColumnType) -> Column:
    """A column spec (short form for the tables below)."""
    return Column(key, id_, en, type_)


MONTH = col("month", "Bulan", "Month", "text")
TONNES = col("tonnes", "Tonase (ton)", "Tonnage (t)", "tonnes")
# Each month's coverage beside its tonnage (docs/national-report.md).
MONTH_COVERAGE: tuple[Column, ...] = (
    col("status", "Status data bulan", "Month's data status", "text"),
    col("days_with_data", "Hari berdata", "Days with data", "count"),
)

# Grouping sheets: the group's columns between the month and the tonnage.
GROUP_COLUMNS: dict[str, tuple[Column, ...]] = {
    "category": (col("category", "Kategori", "Category", "text"),),
    "district": (
        col("district", "Kode kecamatan", "District id", "text"),
        col("district_name", "Kecamatan", "District", "text"),
    ),
    "site": (
        col("site", "Kode lokasi", "Site id", "text"),
        col("site_name", "Lokasi", "Site", "text"),
    ),
    "material": (col("material", "Jenis sampah", "Material", "text"),),
}

# The national (SIPSN) terms, in the order a planner copies them.
NATIONAL: tuple[Column, ...] = (
    col("status", "Status data", "Data status", "text"),
    col("days", "Jumlah hari", "Days in period", "count"),
    col("days_with_data", "Hari berdata", "Days with data", "count"),
    col(
        "A_t",
        "A Timbulan sampah, hari berdata (ton, estimasi)",
        "A generation, days with data (t, estimate)",
        "tonnes",
    ),
    col(
        "A_month_estimate_t",
        "Estimasi timbulan seluruh periode (ton)",
        "Generation estimate, whole period (t)",
        "tonnes",
    ),
    col(
        "A_measured_t",
        "Terukur: kurangi+manfaatkan+residu (ton)",
        "Measured reduce+utilize+residual (t)",
        "tonnes",
    ),
    col("B_t", "B Pengurangan sampah (ton)", "B reduction (t)", "tonnes"),
    col("B_share", "%B Pengurangan (B/A)", "%B reduction (B/A)", "percent"),
    col("C_t", "C Penanganan sampah (ton)", "C handling (t)", "tonnes"),
    col("C_share", "%C Penanganan (C/A)", "%C handling (C/A)", "percent"),
    col("managed_t", "B+C Sampah terkelola (ton)", "B+C managed (t)", "tonnes"),
    col("managed_share", "%(B+C) Sampah terkelola", "%(B+C) managed", "percent"),
    col(
        "unmanaged_t",
        "Sampah tidak terkelola A-(B+C) (ton)",
        "Unmanaged A-(B+C) (t)",
        "tonnes",
    ),
    col("D_t", "D Daur ulang (ton)", "D recycled (t)", "tonnes"),
    col("E_t", "E Bahan baku (ton)", "E raw material (t)", "tonnes"),
    col("recycling_rate", "Tingkat daur ulang (D+E)/A", "Recycling rate (D+E)/A", "percent"),
)
INDICATOR = col("indicator", "Indikator", "Indicator", "text")

LANDFILL: tuple[Column, ...] = (
    MONTH,
    col("site", "Kode lokasi", "Site id", "text"),
    col("site_name", "TPA", "Landfill", "text"),
    col("trips", "Ritase", "Trips", "count"),
    col("net_t", "Berat bersih (ton)", "Net (t)", "tonnes"),
    col("t_per_trip", "Ton per rit", "t per trip", "tonnes"),
    col("quota_t", "Kuota (ton)", "Quota (t)", "tonnes"),
    col("quota_used_share", "Kuota terpakai", "Quota used", "percent"),
)
FACILITIES: tuple[Column, ...] = (
    MONTH,
    col("site", "Kode lokasi", "Site id", "text"),
    col("site_name", "Fasilitas", "Facility", "text"),
    col("in_t", "Sampah masuk (ton)", "In (t)", "tonnes"),
    col("processed_t", "Diolah: masuk - residu (ton)", "Processed: in - residue (t)", "tonnes"),
    col("processed_output_t", "Hasil olahan (ton)", "Processed output (t)", "tonnes"),
    col("residue_t", "Residu ke TPA (ton)", "Residue to landfill (t)", "tonnes"),
)
WASTE_BANKS: tuple[Column, ...] = (
    MONTH,
    col("material", "Jenis sampah", "Material", "text"),
    col("kg", "Setoran (kg)", "Deposited (kg)", "kg"),
    col("amount_rp", "Nilai (Rp)", "Credited (Rp)", "rupiah"),
    col("deposits", "Jumlah setoran", "Deposits", "count"),
)
DATA_QUALITY: tuple[Column, ...] = (
    MONTH,
    col("status", "Status data", "Data status", "text"),
    col("days_with_data", "Hari berdata", "Days with data", "count"),
    col("days_in_month", "Jumlah hari", "Days in month", "count"),
    col("days_without_data", "Hari tanpa data", "Days without data", "text"),
    col(
        "scales_silent_some_days",
        "Timbangan tanpa data pada sebagian hari",
        "Scales silent on some days",
        "text",
    ),
    col("weighings", "Jumlah penimbangan", "Weighings", "count"),
    col("manual_tickets", "Tiket manual", "Manual tickets", "count"),
    col("manual_share", "Porsi tiket manual", "Manual share", "percent"),
    col("silent_scales_now", "Timbangan diam (saat ini)", "Silent scales (now)", "count"),
    col("quarantined", "Pesan dikarantina", "Quarantined messages", "count"),
    col("note", "Catatan", "Note", "text"),
)

SHEET_NAMES: dict[str, tuple[str, str]] = {
    "annual": ("nasional_tahunan", "national_annual"),
    "category": ("kategori", "category"),
    "district": ("kecamatan", "district"),
    "site": ("lokasi", "site"),
    "material": ("jenis_sampah", "material"),
    "national": ("nasional", "national"),
    "landfill": ("tpa", "landfill"),
    "facilities": ("fasilitas", "facilities"),
    "waste_banks": ("bank_sampah", "waste_banks"),
    "data_quality": ("kualitas_data", "data_quality"),
}

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "complete": ("lengkap", "complete"),
    "partial": ("sebagian (bulan parsial)", "partial month"),
    "in_progress": ("bulan berjalan", "month in progress"),
    "future": ("belum berjalan", "not begun"),
    "no_data": ("tanpa data", "no data"),
}

# Fixed words of the exports.
WORDS: dict[str, tuple[str, str]] = {
    "total": ("Jumlah", "total"),
    "total_fates": ("Jumlah (kurangi+manfaatkan+residu)", "total (reduce+utilize+residual)"),
    "year": ("Tahun", "Year"),
    "a_note": (
        "A = target timbulan × hari berdata (estimasi); persentase dihitung atas hari berdata",
        "A = generation target × days with data (estimate); shares are over the days with data",
    ),
    "period_partial": ("periode parsial", "partial period"),
}
MONTH_NAMES: dict[Lang, tuple[str, ...]] = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def word(key: str, lang: Lang) -> str:
    """A fixed word of the exports in the language."""
    id_, en = WORDS[key]
    return id_ if lang == "id" else en


def sheet_name(key: str, lang: Lang) -> str:
    """A sheet's name in the language."""
    id_, en = SHEET_NAMES[key]
    return id_ if lang == "id" else en


def status_label(status: str, lang: Lang) -> str:
    """A month's coverage status in the language."""
    id_, en = STATUS_LABELS[status]
    return id_ if lang == "id" else en
