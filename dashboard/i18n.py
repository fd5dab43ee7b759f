"""Interface text in Bahasa Indonesia (default) and English, through one translate function."""

from __future__ import annotations

from typing import Any, Literal, cast

Lang = Literal["id", "en"]
DEFAULT_LANG: Lang = "id"
LANGS: tuple[Lang, ...] = ("id", "en")

# key -> (Bahasa Indonesia, English)
TEXT: dict[str, tuple[str, str]] = {
    "app_title": ("Kang PisMan – Pemantau Sampah", "Kang PisMan – Waste Tracker"),
    "switch_lang": ("English", "Bahasa Indonesia"),
    "logout": ("Keluar", "Log out"),
    "nav_overview": ("Ringkasan", "Overview"),
    "nav_districts": ("Kecamatan", "Districts"),
    "nav_bins": ("Kontainer & perangkat", "Bins & devices"),
    "nav_reports": ("Laporan", "Reports"),
    "api_unreachable": (
        "API tidak dapat dihubungi. Angka akan muncul kembali setelah layanan tersedia.",
        "The API cannot be reached. Figures will return once the service is back.",
    ),
    "api_error": ("API menolak permintaan", "The API refused the request"),
    "no_data": ("Belum ada data untuk periode ini.", "No data yet for this period."),
    "as_of": ("Per", "As of"),
    "today": ("Hari ini", "Today"),
    "of_generation": (
        "terkumpul, dari timbulan {generation}/hari",
        "collected, of {generation}/day generated",
    ),
    "target": ("Target", "Target"),
    "of_target": ("dari target", "of target"),
    "month_to_date": ("Bulan berjalan", "Month to date"),
    "projection": ("Proyeksi akhir bulan", "Month-end projection"),
    "diverted_share": ("Porsi terdaur (kurangi + manfaatkan)", "Diverted share (reduce + utilize)"),
    "landfilled_share": ("Porsi ke TPA", "Share landfilled"),
    "separated_share": ("Porsi terpilah dari yang terkumpul", "Share separated of collected"),
    "collected": ("Terkumpul", "Collected"),
    "diverted": ("Terdaur", "Diverted"),
    "trend_title": ("Tren {days} hari terakhir", "Trend, last {days} days"),
    "landfill_quota": ("Kuota TPA", "Landfill quota"),
    "quota_used": (
        "{used} terpakai dari {quota} ({share}), sisa {remaining}",
        "{used} used of {quota} ({share}), {remaining} left",
    ),
    "kbs": ("RW Kawasan Bebas Sampah", "Waste-free neighbourhoods (KBS)"),
    "organic_at_landfill": (
        "Sampah organik masuk TPA hari ini",
        "Organic waste at the landfill today",
    ),
    "category": ("Kategori", "Category"),
    "tonnes": ("Ton", "Tonnes"),
    "share": ("Porsi", "Share"),
    "district": ("Kecamatan", "District"),
    "all_districts": ("Semua kecamatan", "All districts"),
    "sites": ("Lokasi", "Sites"),
    "site": ("Lokasi", "Site"),
    "no_sites": ("Belum ada lokasi", "No sites yet"),
    "no_sites_in_district": (
        "Kecamatan ini belum memiliki lokasi.",
        "This district has no sites yet.",
    ),
    "colour_by": ("Warna menurut", "Colour by"),
    "by_tonnage": ("Tonase bulan berjalan", "Tonnage, month to date"),
    "by_fill": ("Isi kontainer", "Bin fill"),
    "map_title": ("Peta lokasi", "Map of sites"),
    "district_table": ("Per kecamatan, bulan berjalan", "Per district, month to date"),
    "total": ("Total", "Total"),
    "bins_to_empty": ("Kontainer perlu diangkut", "Bins needing collection"),
    "no_bins_to_empty": ("Tidak ada kontainer yang perlu diangkut.", "No bins need collection."),
    "fill": ("Isi", "Fill"),
    "battery": ("Baterai", "Battery"),
    "reading_time": ("Waktu bacaan", "Reading time"),
    "location": ("Lokasi (lat, lon)", "Location (lat, lon)"),
    "silent_devices": ("Perangkat diam", "Silent devices"),
    "no_silent_devices": ("Semua perangkat aktif.", "Every device is reporting."),
    "low_batteries": ("Baterai lemah", "Low batteries"),
    "no_low_batteries": ("Tidak ada baterai lemah.", "No low batteries."),
    "device": ("Perangkat", "Device"),
    "kind": ("Jenis", "Kind"),
    "status": ("Status", "Status"),
    "silent_for": ("Diam selama", "Silent for"),
    "last_seen": ("Terakhir terlihat", "Last seen"),
    "status_online": ("daring", "online"),
    "status_offline": ("luring", "offline"),
    "status_never_seen": ("belum pernah terhubung", "never seen"),
    "month": ("Bulan", "Month"),
    "group_by": ("Kelompokkan menurut", "Group by"),
    "group_category": ("Kategori", "Category"),
    "group_district": ("Kecamatan", "District"),
    "group_site": ("Lokasi", "Site"),
    "group_material": ("Material", "Material"),
    "download_csv": ("Unduh CSV", "Download CSV"),
    "download_xlsx": ("Unduh XLSX", "Download XLSX"),
    "download_forbidden": (
        "Kunci API dasbor tidak berhak mengunduh (perlu peran planner).",
        "The dashboard's API key may not download exports (it needs the planner role).",
    ),
    "report_title": ("Laporan bulanan", "Monthly report"),
    "bad_report_choice": (
        "Pilih bulan (TTTT-BB, misalnya 2026-10) dan pengelompokan dari daftar.",
        "Choose a month (YYYY-MM, e.g. 2026-10) and a grouping from the lists.",
    ),
    "fates_note": (
        "Pisahkan adalah ukuran proses dan tidak dijumlahkan ke total.",
        "Separate is a process measure and is not added into totals.",
    ),
    "page_not_found": ("Halaman tidak ditemukan.", "Page not found."),
    # Reports: periods, coverage and the national (SIPSN) terms.
    "period": ("Periode", "Period"),
    "period_month": ("Bulanan", "Monthly"),
    "period_year": ("Tahunan", "Annual"),
    "year": ("Tahun", "Year"),
    "annual_title": ("Laporan tahunan", "Annual report"),
    "national_title": ("Ringkasan nasional (SIPSN)", "National summary (SIPSN)"),
    "indicator": ("Indikator", "Indicator"),
    "coverage_line": (
        "{status}: data pada {covered} dari {days} hari",
        "{status}: data on {covered} of {days} days",
    ),
    "silent_scales_days": (
        "Timbangan tanpa data pada sebagian hari: {scales}",
        "Scales silent on some days: {scales}",
    ),
    "days_short": ("hari", "days"),
    "days_with_data": ("Hari berdata", "Days with data"),
    "status_complete": ("Lengkap", "Complete"),
    "status_partial": ("Bulan parsial", "Partial month"),
    "status_in_progress": ("Bulan berjalan", "Month in progress"),
    "status_future": ("Belum berjalan", "Not begun"),
    "status_no_data": ("Tanpa data", "No data"),
    "status_partial_period": ("Periode parsial", "Partial period"),
    "term_A_t": (
        "A Timbulan, hari berdata (ton, estimasi)",
        "A generation, days with data (t, estimate)",
    ),
    "term_A_month_estimate_t": (
        "Estimasi timbulan seluruh periode (ton)",
        "Generation estimate, whole period (t)",
    ),
    "term_B_t": ("B Pengurangan (ton)", "B reduction (t)"),
    "term_B_share": ("%B Pengurangan", "%B reduction"),
    "term_C_t": ("C Penanganan (ton)", "C handling (t)"),
    "term_C_share": ("%C Penanganan", "%C handling"),
    "term_managed_share": ("%(B+C) Terkelola", "%(B+C) managed"),
    "term_unmanaged_t": ("Tidak terkelola A-(B+C) (ton)", "Unmanaged A-(B+C) (t)"),
    "term_recycling_rate": ("Tingkat daur ulang (D+E)/A", "Recycling rate (D+E)/A"),
    "a_note": (
        "A = target timbulan × hari berdata (estimasi); persentase dihitung atas hari berdata. "
        "Bulan tanpa data tidak dihitung.",
        "A = generation target × days with data (an estimate); shares are over the days with "
        "data. Months without data count nowhere.",
    ),
    # Collection plan page (issue 12).
    "nav_collection": ("Rencana angkut", "Collection plan"),
    "plan_date": ("Tanggal rencana", "Plan date"),
    "pool": ("Pool truk", "Truck pool"),
    "all_pools": ("Semua pool", "All pools"),
    "plan_trucks": ("Truk dipakai", "Trucks used"),
    "plan_trips": ("Rit ke TPA", "Landfill trips"),
    "plan_km": ("Km truk", "Truck-km"),
    "plan_tonnes": ("Muatan", "Load"),
    "plan_uncovered": ("Tidak terangkut", "Not covered"),
    "plan_stops": ("Urutan per truk", "Stops per truck"),
    "plan_not_covered": ("TPS yang tidak terangkut dan alasannya", "Depots not covered, and why"),
    "plan_all_covered": (
        "Semua TPS yang perlu diangkut masuk rencana.",
        "Every depot that needs emptying is in the plan.",
    ),
    "plan_needs_planner": (
        "Kunci API dasbor tidak berhak membaca rencana angkut (perlu peran planner).",
        "The dashboard's API key may not read the collection plan (it needs the planner role).",
    ),
    "truck": ("Truk", "Truck"),
    "trip": ("Rit", "Trip"),
    "stop_order": ("Urutan", "Order"),
    "expected_fill": ("Perkiraan isi", "Expected fill"),
    "time_window": ("Jendela waktu", "Time window"),
    "arrival": ("Tiba", "Arrival"),
    "reason": ("Alasan", "Reason"),
    "minutes_short": ("mnt", "min"),
}


def as_lang(value: Any) -> Lang:
    """A stored language value, or the default when it is missing or unknown."""
    return cast(Lang, value) if value in LANGS else DEFAULT_LANG


def t(key: str, lang: Lang, **values: Any) -> str:
    """The text for key in lang, with {placeholders} filled in; the key itself if unknown."""
    pair = TEXT.get(key)
    if pair is None:
        return key
    text = pair[0] if lang == "id" else pair[1]
    return text.format(**values) if values else text


def label(items: list[dict[str, Any]] | None, code: str, lang: Lang) -> str:
    """The label of a code from a /v1/meta list ({"code", "label_id", "label_en"}); the code if absent."""
    for item in items or []:
        if item.get("code") == code:
            return str(item.get("label_id" if lang == "id" else "label_en") or code)
    return code
