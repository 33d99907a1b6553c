-- Fleet matching results, written by analytics/match. 18.16-compatible DDL
-- (see 0001): one JOIN per SELECT, joins by USING on uniquely named columns,
-- no window functions.
--
-- Pipeline (every step idempotent: rows are keyed on their full identity in
-- ReplacingMergeTree tables and readers filter on the current advisory
-- record, so re-running a step or a whole job changes nothing):
--   1. version level: each distinct (ecosystem, match_name, v_key) of
--      inventory_packages is matched ONCE against the current affected_ranges
--      -> match_version_findings
--   2. inventory level: every distinct inventory_hash gets the findings of its
--      packages, once (inventories are content-addressed, so this also serves
--      every past scan) -> match_inventory_findings
--   3. host / scan level: views join scans to step 2 (host_findings for the
--      current state, exposure_history over all scans).
--
-- Currency: rows carry the advisory's record_hash. A finding counts only while
-- its (source, advisory_id, record_hash) is the current row of
-- `advisories FINAL` with withdrawn = 0. A modified advisory's old findings
-- therefore stop counting as soon as the feed loader writes the new record,
-- and a withdrawn one disappears, without deleting anything here.
-- Statuses: affected, unfixed, will_not_fix are findings. not_affected never
-- is: when a not_affected range of an advisory covers a version, that
-- advisory yields no finding for that version even if another of its ranges
-- covers it too (the vendor statement wins).

-- Step 1: one row per (package version, advisory range) that covers it.
CREATE TABLE IF NOT EXISTS match_version_findings (
    ecosystem      String,   -- with release: inventory_packages.ecosystem = affected_ranges.ecosystem
    match_name     String,   -- = affected_ranges.package (source package for distros)
    v_key          String,   -- never '' (an unkeyable version matches nothing)
    match_version  String,   -- one version string with this key (equal keys = equal versions)
    source         String,
    advisory_id    String,
    record_hash    String,
    range_idx      UInt16,
    range_type     String,
    status         String,   -- affected, unfixed, will_not_fix
    comparator     String,
    introduced     String,
    fixed          String,
    last_affected  String,
    fix_published  DateTime,
    matched_at     DateTime,
    run_id         String    -- the match_runs row that wrote it
) ENGINE = ReplacingMergeTree(matched_at)
ORDER BY (ecosystem, match_name, v_key, source, advisory_id, record_hash, range_idx);

-- Step 2: one row per (inventory, installed package, advisory). When several
-- ranges of one advisory cover the package, the lowest range_idx is kept as
-- evidence. name/version/arch/location are the package as installed (the
-- binary package), match_name/match_version what the advisory was compared
-- with (dpkg Source, apk origin, rpm source RPM, or the package itself).
CREATE TABLE IF NOT EXISTS match_inventory_findings (
    inventory_hash String,
    ecosystem      String,
    name           String,
    version        String,
    arch           String,
    location       String,
    match_name     String,
    match_version  String,
    v_key          String,
    source         String,
    advisory_id    String,
    record_hash    String,
    range_idx      UInt16,
    range_type     String,
    status         String,
    comparator     String,
    introduced     String,
    fixed          String,
    last_affected  String,
    fix_published  DateTime,
    matched_at     DateTime,
    run_id         String
) ENGINE = ReplacingMergeTree(matched_at)
ORDER BY (inventory_hash, source, advisory_id, record_hash, ecosystem, name, arch, version, location);

-- Incremental bookkeeping. A row here means "done for this identity": the
-- incremental job matches only versions, advisory records and inventories
-- absent from these tables, and marks them after their findings are written
-- (a crash in between only means the next run redoes them).
CREATE TABLE IF NOT EXISTS match_done_versions (
    ecosystem  String,
    match_name String,
    v_key      String,
    matched_at DateTime
) ENGINE = ReplacingMergeTree(matched_at)
ORDER BY (ecosystem, match_name, v_key);

CREATE TABLE IF NOT EXISTS match_done_advisories (
    source      String,
    advisory_id String,
    record_hash String,
    matched_at  DateTime
) ENGINE = ReplacingMergeTree(matched_at)
ORDER BY (source, advisory_id, record_hash);

CREATE TABLE IF NOT EXISTS match_done_inventories (
    inventory_hash String,
    matched_at     DateTime
) ENGINE = ReplacingMergeTree(matched_at)
ORDER BY inventory_hash;

-- What one run works on, snapshotted at its start so that data arriving
-- while it runs is neither half-matched nor marked done: the run matches and
-- marks exactly these rows, then deletes them. Internal to analytics/match.
CREATE TABLE IF NOT EXISTS match_pending_versions (
    run_id     String,
    ecosystem  String,
    match_name String,
    v_key      String
) ENGINE = MergeTree
ORDER BY (run_id, ecosystem, match_name, v_key);

CREATE TABLE IF NOT EXISTS match_pending_advisories (
    run_id      String,
    source      String,
    advisory_id String,
    record_hash String
) ENGINE = MergeTree
ORDER BY (run_id, source, advisory_id, record_hash);

CREATE TABLE IF NOT EXISTS match_pending_inventories (
    run_id         String,
    inventory_hash String
) ENGINE = MergeTree
ORDER BY (run_id, inventory_hash);

-- One row per matching job: what `patchgrid match --fleet` did and when.
-- KPIs can show "findings as of finished_at".
CREATE TABLE IF NOT EXISTS match_runs (
    run_id            String,
    mode              String,   -- full, incremental
    started_at        DateTime,
    finished_at       DateTime,
    versions          UInt64,   -- distinct package versions matched
    advisories        UInt64,   -- advisory records (re)matched
    inventories       UInt64,   -- inventories fanned out
    version_findings  UInt64,   -- match_version_findings rows written
    error             String
) ENGINE = MergeTree
ORDER BY (started_at, run_id);

-- Current findings per host: the latest scan of every host (ties on
-- scanned_at broken by scan_id) joined to its inventory's findings, current
-- advisory records only, with the advisory's aliases and severity attached.
-- kernel_state says how a kernel image package relates to the running
-- kernel (scans.kernel_running, uname -r):
--   ''            not a kernel image package (linux-libc-dev, linux-perf, ... too)
--   'running'     the image of the running kernel: exposed
--   'not_running' an installed kernel that is not running: NOT exposed now,
--                 exposed after a reboot into it. KPIs count exposure with
--                 kernel_state != 'not_running'.
--   'unknown'     a kernel image on a host that reported no running kernel: exposed
-- Kernel images: Debian/Ubuntu linux-image-<uname -r>, RPM kernel / kernel-core
-- (uname -r = version-release.arch), Alpine linux-<flavor> (uname -r
-- = <version>-<rel>-<flavor> for apk version <version>-r<rel>).
CREATE VIEW IF NOT EXISTS host_findings AS
SELECT
    host_id, scan_id, scanned_at, hostname, os_ecosystem, kernel_running,
    owner, ring, criticality, internet_facing, tags,
    inventory_hash, ecosystem, name, version, arch, location,
    match_name, match_version, source, advisory_id, record_hash,
    range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published,
    aliases, cves, severity, cvss_score, file,
    multiIf(
        NOT (match(name, '^linux-image-[0-9]') OR name IN ('kernel', 'kernel-core') OR match(name, '^linux-(lts|virt|edge|rpi|rpi2|rpi4)$')), '',
        kernel_running = '', 'unknown',
        name = concat('linux-image-', kernel_running)
            OR concat(replaceRegexpOne(version, '^[0-9]+:', ''), '.', arch) = kernel_running
            OR concat(replaceRegexpOne(version, '-r([0-9]+)$', '-\\1'), '-', substring(name, 7)) = kernel_running, 'running',
        'not_running') AS kernel_state
FROM (
    SELECT host_id,
        latest.1 AS scan_id, latest.2 AS scanned_at, latest.3 AS hostname,
        latest.4 AS os_ecosystem, latest.5 AS kernel_running, latest.6 AS owner,
        latest.7 AS ring, latest.8 AS criticality, latest.9 AS internet_facing,
        latest.10 AS tags, latest.11 AS inventory_hash
    FROM (
        SELECT host_id,
            argMax((scan_id, scanned_at, hostname, os_ecosystem, kernel_running, owner,
                    ring, criticality, internet_facing, tags, inventory_hash),
                   (scanned_at, scan_id)) AS latest
        FROM scans
        GROUP BY host_id
    )
) AS latest_scans
ALL INNER JOIN (
    SELECT inventory_hash, ecosystem, name, version, arch, location,
        match_name, match_version, source, advisory_id, record_hash,
        range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published,
        aliases, cves, severity, cvss_score, file
    FROM (
        SELECT inventory_hash, ecosystem, name, version, arch, location,
            match_name, match_version, source, advisory_id, record_hash,
            range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published
        FROM match_inventory_findings FINAL
    ) AS findings
    ALL INNER JOIN (
        SELECT source, advisory_id, record_hash, aliases, cves, severity, cvss_score, file
        FROM advisories FINAL
        WHERE withdrawn = 0
    ) AS current_advisories USING (source, advisory_id, record_hash)
) AS inventory_findings USING (inventory_hash);

-- Exposure history per (host, advisory), over every scan of the host, as
-- known with the CURRENT advisory records (a later-published advisory is
-- applied to old inventories too: "was this host running a vulnerable
-- version then", not "did we know then"). A scan exposes the host when its
-- inventory has a finding of the advisory that is not on a non-running
-- kernel image. Scans of one host in the same second count as one.
--   first_seen  first exposing scan
--   last_seen   last exposing scan
--   resolved_at first scan after last_seen (the package fixed or gone), or
--               the zero DateTime (epoch 0) while the latest scan is still exposed
--   reopened    how many times exposure came back after a scan without it
--   exposed_now 1 when the host's latest scan is exposed
-- For "which hosts were exposed to X on date D" see analytics/match
-- ExposedAt (a parameterized query: views take no parameters on 18.16).
CREATE VIEW IF NOT EXISTS exposure_history AS
SELECT host_id, source, advisory_id,
    exposed[1] AS first_seen,
    exposed[length(exposed)] AS last_seen,
    arrayFirst(t -> t > last_seen, scan_times) AS resolved_at,
    arrayCount(t -> NOT has(exposed, scan_times[indexOf(scan_times, t) - 1]), arraySlice(exposed, 2)) AS reopened,
    toUInt8(last_seen = scan_times[length(scan_times)]) AS exposed_now,
    length(exposed) AS exposed_scans
FROM (
    SELECT host_id, source, advisory_id, arraySort(groupUniqArray(scanned_at)) AS exposed
    FROM (
        SELECT host_id, scanned_at, inventory_hash, kernel_running FROM scans FINAL
    ) AS all_scans
    ALL INNER JOIN (
        SELECT inventory_hash, source, advisory_id, name, version, arch
        FROM (
            SELECT inventory_hash, source, advisory_id, record_hash, name, version, arch
            FROM match_inventory_findings FINAL
        ) AS findings
        ALL INNER JOIN (
            SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0
        ) AS current_advisories USING (source, advisory_id, record_hash)
    ) AS inventory_findings USING (inventory_hash)
    WHERE NOT ((match(name, '^linux-image-[0-9]') OR name IN ('kernel', 'kernel-core') OR match(name, '^linux-(lts|virt|edge|rpi|rpi2|rpi4)$'))
        AND kernel_running != ''
        AND NOT (name = concat('linux-image-', kernel_running)
            OR concat(replaceRegexpOne(version, '^[0-9]+:', ''), '.', arch) = kernel_running
            OR concat(replaceRegexpOne(version, '-r([0-9]+)$', '-\\1'), '-', substring(name, 7)) = kernel_running))
    GROUP BY host_id, source, advisory_id
) AS exposures
ALL INNER JOIN (
    SELECT host_id, arraySort(groupUniqArray(scanned_at)) AS scan_times FROM scans FINAL GROUP BY host_id
) AS host_scans USING (host_id);
