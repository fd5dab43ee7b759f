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
    "truck": ("Truk", "Truck"),
    "trip": ("Rit", "Trip"),
    "stop_order": ("Urutan", "Order"),
    "expected_fill": ("Perkiraan isi", "Expected fill"),
    "time_window": ("Jendela waktu", "Time window"),
    "arrival": ("Tiba", "Arrival"),
    "reason": ("Alasan", "Reason"),
    "minutes_short": ("mnt", "min"),
    # Collection plan downloads and bin forecasts (issue 12).
    "plan_role_needed": (
        "Rencana angkut hanya untuk peran planner dan admin; akun Anda tidak berhak membacanya.",
        "The collection plan is for planners and admins; your account may not read it.",
    ),
    "plan_print": ("Halaman cetak per truk", "Printable page per truck"),
    "plan_download_forbidden": (
        "Akun Anda tidak berhak mengunduh rencana angkut (perlu peran planner).",
        "Your account may not download the collection plan (it needs the planner role).",
    ),
    "bins_forecast": ("Kapan kontainer penuh", "When bins will be full"),
    "no_bins_to_forecast": ("Tidak ada sensor kontainer di sini.", "No bin sensors here."),
    "forecast_until": ("Sampai ambang penuh", "Until its full threshold"),
    "forecast_expected_at": ("Perkiraan waktu", "Expected at"),
    "forecast_rate": ("Laju isi per hari", "Fill a day"),
    "forecast_fill_now": ("Isi sekarang", "Fill now"),
    "forecast_hours": ("± {n} jam ({low}–{high})", "in ~{n} h ({low}–{high})"),
    "forecast_days": ("± {n} hari ({low}–{high})", "in ~{n} d ({low}–{high})"),
    "forecast_under_hour": ("< 1 jam", "within the hour"),
    "forecast_at_threshold": ("sudah di ambang", "at its threshold now"),
    "forecast_beyond": ("lebih dari 14 hari", "more than 14 days"),
    "forecast_no_history": ("riwayat kurang", "not enough history"),
    "forecast_reason_no_readings": (
        "tidak ada pembacaan dalam {days} hari terakhir",
        "no readings in the last {days} days",
    ),
    "forecast_reason_stale": (
        "pembacaan terbaru lebih dari 48 jam yang lalu",
        "the newest reading is over 48 h old",
    ),
    "forecast_reason_too_few_hours": (
        "baru {hours} jam data, perlu lebih banyak jam di antara pengosongan",
        "only {hours} h of data; needs more hours between emptyings",
    ),
    "forecast_note": (
        "Perkiraan dari riwayat isi tiap kontainer ({days} hari terakhir); rentang: hari cepat–"
        "hari lambat.",
        "Forecast from each bin's own fill history (last {days} days); range: a fast day to a "
        "slow day.",
    ),
    "city_switch": ("Kota", "City"),
    # Overview (issue 14): today so far against the pace expected by now, yesterday, the trend.
    "ov_today_so_far": ("Hari ini sejauh ini", "Today so far"),
    "ov_pace_expected": (
        "{so_far} dari {expected} yang diharapkan sampai saat ini",
        "{so_far} of {expected} expected by now",
    ),
    "ov_pace_ceiling": (
        "{so_far} dari batas {expected} sampai saat ini",
        "{so_far} of the {expected} ceiling by now",
    ),
    "ov_pace_none": (
        "{so_far}; belum ada laju harapan",
        "{so_far}; no expected pace yet",
    ),
    "ov_ahead": ("di depan laju", "ahead of pace"),
    "ov_behind": ("di belakang laju", "behind pace"),
    "ov_over_ceiling_now": (
        "Melebihi batas harian: +{over}",
        "Over the daily ceiling: +{over}",
    ),
    "ov_above_ceiling_pace": (
        "Di atas laju batas: +{over} dari yang diharapkan sampai saat ini",
        "Above the ceiling's pace: +{over} more than expected by now",
    ),
    "ov_over_ceiling": ("Melebihi batas: +{over}", "Over the ceiling: +{over}"),
    "ov_within_ceiling": ("di bawah batas", "within the ceiling"),
    "ov_ceiling_day": ("Batas harian", "Daily ceiling"),
    "ov_ceiling_note": (
        "Residu ke TPA adalah batas atas, bukan sasaran: makin sedikit makin baik.",
        "Residual to landfill is a ceiling, not a goal: less is better.",
    ),
    "ov_basis_history": (
        "Laju harapan: pola per jam pada hari yang sama dalam 4 minggu terakhir ({days}).",
        "Expected pace: the hourly pattern of the same weekday over the last 4 weeks ({days}).",
    ),
    "ov_basis_profile": (
        "Laju harapan: profil per jam kota, karena riwayat kota belum cukup (sumber: {source}).",
        "Expected pace: the city's hourly profile, as its own history is still too short "
        "(source: {source}).",
    ),
    "ov_basis_none": (
        "Belum ada laju harapan: riwayat kota belum cukup dan kota tidak punya profil per jam.",
        "No expected pace yet: the city's history is too short and it has no hourly profile.",
    ),
    "ov_yesterday": ("Kemarin", "Yesterday"),
    "ov_yesterday_no_data": (
        "Tidak ada data penimbangan kemarin.",
        "Nothing was weighed yesterday.",
    ),
    "ov_amount": ("Jumlah", "Amount"),
    "ov_target_or_ceiling": ("Target / batas", "Target / ceiling"),
    "ov_generation_line": ("Timbulan {value}/hari", "Generated {value}/day"),
    "ov_trend_title": ("Tren harian {start} – {end}", "Daily trend {start} – {end}"),
    "ov_trend_range": ("Rentang tanggal", "Date range"),
    "ov_trend_picture": (
        "Grafik tonase harian: {series}",
        "Chart of daily tonnage: {series}",
    ),
    "ov_range_start": ("Tanggal awal", "First day"),
    "ov_range_end": ("Tanggal akhir", "Last day"),
    "ov_range_missing": (
        "Pilih tanggal awal dan tanggal akhir tren.",
        "Choose the trend's first and last day.",
    ),
    "ov_range_reversed": (
        "Tanggal awal harus sebelum atau sama dengan tanggal akhir.",
        "The first day must not be after the last day.",
    ),
    "ov_range_future": (
        "Tanggal akhir tidak boleh setelah hari ini.",
        "The last day cannot be after today.",
    ),
    "ov_range_too_long": (
        "Rentang tren paling lama {days} hari; pilih rentang yang lebih pendek.",
        "The trend covers at most {days} days; choose a shorter range.",
    ),
    # Alerts panel on the overview and the bins page (issue 14); every kind an alert can have.
    "alerts_title": ("Peringatan", "Alerts"),
    "alerts_none": ("Tidak ada peringatan saat ini.", "No alerts right now."),
    "alert_kind_fire": ("KEBAKARAN", "FIRE"),
    "alert_kind_tilt": ("Kontainer terguling", "Bin tipped over"),
    "alert_kind_lid_open": ("Tutup kontainer terbuka", "Bin lid open"),
    "alert_kind_bin_full": ("Kontainer penuh", "Bin full"),
    "alert_kind_device_silent": ("Perangkat diam", "Device silent"),
    "alert_kind_low_battery": ("Baterai lemah", "Low battery"),
    "alert_kind_organic_at_landfill": ("Sampah organik di TPA", "Organic waste at the landfill"),
    "alert_kind_unknown": ("Peringatan lain", "Other alert"),
    "severity_critical": ("Kritis", "Critical"),
    "severity_warning": ("Waspada", "Warning"),
    "severity_info": ("Info", "Info"),
    "alerts_since": ("sejak {when}", "since {when}"),
    "alerts_ack": ("Tandai ditangani", "Acknowledge"),
    "alerts_acked_by": ("Ditangani oleh {who}, {when}", "Acknowledged by {who}, {when}"),
    "alerts_open_count": ("{n} belum ditangani", "{n} not acknowledged"),
    "alerts_see_all": ("Semua peringatan →", "All alerts →"),
    "alerts_more": ("dan {n} lainnya", "and {n} more"),
    "alerts_ack_ended": (
        "Peringatan ini sudah selesai sebelum ditandai; daftar sudah diperbarui.",
        "This alert ended before it was acknowledged; the list is up to date.",
    ),
    "alerts_ack_failed": ("Gagal menandai ditangani: {detail}", "Could not acknowledge: {detail}"),
    "alerts_ack_done": ("Ditandai ditangani.", "Acknowledged."),
    "alerts_ack_already": (
        "Sudah ditangani lebih dulu oleh {who}.",
        "Already acknowledged by {who}.",
    ),
    # District map (issue 14): outlines shaded by a figure, sites on top.
    "map_shade_by": ("Arsiran kecamatan", "Districts shaded by"),
    "map_shade_residual": (
        "Residu per hari (rata-rata bulan berjalan)",
        "Residual per day (month-to-date average)",
    ),
    "map_shade_bins": ("Kontainer perlu dikosongkan", "Bins needing collection"),
    "map_t_per_day": ("t/hari", "t/day"),
    "map_bins_unit": ("kontainer", "bins"),
    "map_no_outlines": (
        "Batas kecamatan belum tersedia untuk kota ini: peta hanya menampilkan lokasi "
        "(tambahkan berkas GeoJSON di data kota, lihat docs/city-data.md).",
        "No district outlines for this city yet: the map shows sites only "
        "(add a GeoJSON file to the city data, see docs/city-data.md).",
    ),
    "map_outline_source": ("Batas wilayah: {source}", "Boundaries: {source}"),
    "map_sites_tonnage": ("Lokasi (warna: ton bulan berjalan)", "Sites (colour: t month to date)"),
    "map_bin_fill": ("Kontainer bersensor (warna: % isi)", "Bins with a sensor (colour: % full)"),
    "map_sensor_no_reading": ("Sensor, belum ada data", "Sensor, no reading yet"),
    "map_no_sensor": ("Lokasi tanpa sensor isi", "Site without a fill sensor"),
    "map_off_frame": ("{name}: {km} km dari tengah peta", "{name}: {km} km from the map's centre"),
    "map_no_value": ("tidak ada data", "no data"),
    # The login page (dashboard/auth.py)
    "login_title": ("Masuk", "Log in"),
    "login_heading": ("Kang PisMan – Masuk", "Kang PisMan – Log in"),
    "login_username": ("Nama pengguna", "Username"),
    "login_password": ("Kata sandi", "Password"),
    "login_submit": ("Masuk", "Log in"),
    "login_switch": ("English", "Bahasa Indonesia"),
    "login_wrong": ("Nama pengguna atau kata sandi salah.", "Wrong username or password."),
    "login_locked": (
        "Akun dikunci sementara setelah {n} kali gagal masuk berturut-turut. Coba lagi dalam"
        " {m} menit atau hubungi admin.",
        "The account is locked after {n} failed logins in a row. Try again in {m} min or ask"
        " an admin.",
    ),
    "login_disabled": (
        "Akun ini dinonaktifkan; hubungi admin.",
        "This account is disabled; ask an admin.",
    ),
    "login_unreachable": (
        "API tidak dapat dihubungi; coba lagi sebentar lagi.",
        "The API cannot be reached; try again shortly.",
    ),
    "login_expired": (
        "Sesi Anda berakhir; silakan masuk lagi.",
        "Your session ended; please log in again.",
    ),
    "login_bad_form": (
        "Formulir kedaluwarsa; silakan coba lagi.",
        "The form expired; please try again.",
    ),
    "login_city_refused": (
        "Kota {city} tidak tersedia untuk akun Anda; pilih kota lain.",
        "The city {city} is not available to your account; choose another.",
    ),
    "login_back": ("Kembali", "Back"),
}


def as_lang(value: Any) -> Lang:
    """A stored language value, or the default when it is missing or unknown."""
    return cast(Lang, value) if value in LANGS else DEFAULT_LANG


# The chosen language, beside the browser's localStorage (the `lang` store): the server draws
# the first view of a page in it (dashboard/app.py) before any callback has run.
LANG_COOKIE = "pisman_lang"


def request_lang() -> Lang:
    """The language the request's page is drawn in (its cookie; Indonesian by default)."""
    import flask

    if not flask.has_request_context():
        return DEFAULT_LANG
    return as_lang(flask.request.cookies.get(LANG_COOKIE))


def t(key: str, lang: Lang, **values: Any) -> str:
    """The text for key in lang, with {placeholders} filled in; the key itself if unknown."""
    pair = TEXT.get(key)
    if pair is None:
        return key
    text = pair[0] if lang == "id" else pair[1]
    return text.format(**values) if values else text
