-- patchgrid:min-server 23.8
-- A distribution's own rating per release: a finding on a host of Debian
-- 12 takes the Debian tracker's urgency for bookworm, not the worst urgency
-- over every release; old servers keep 0002's per-record ratings (the
-- tracker record's severity is the worst over its releases there).
-- Definitions for readers: schemas/VIEWS.md ("Severity and its source").

-- One row per current record and release it rates on its own: the Debian
-- tracker's urgency per release, which the parser keeps in
-- advisories.specific as {"urgency": {"Debian:12": "low", ...}} (normalized,
-- the worst over the CVE's packages; releases without a rating are absent).
--   ecosystem  the release as hosts' os_ecosystem spells it (Debian:12)
--   severity   the rating for that release (never unknown)
-- vuln_ids, distro and rating_kind as in advisory_ratings.
CREATE VIEW IF NOT EXISTS advisory_release_ratings AS
SELECT r.source AS source, r.advisory_id AS advisory_id, r.vuln_ids AS vuln_ids, r.distro AS distro,
    'debian-urgency' AS rating_kind, u.ecosystem AS ecosystem, u.release_severity AS severity
FROM advisory_ratings AS r
INNER JOIN (
    SELECT source, advisory_id, kv.1 AS ecosystem, patchgrid_severity(kv.2) AS release_severity
    FROM advisories FINAL
    ARRAY JOIN JSONExtractKeysAndValues(specific, 'urgency', 'String') AS kv
    WHERE withdrawn = 0 AND source = 'debian-tracker'
) AS u ON u.source = r.source AND u.advisory_id = r.advisory_id
WHERE u.release_severity != 'unknown';

-- Per current record and release (ecosystem): the rating a finding of that
-- record on a host of that release takes before every tier of vuln_ratings
-- (tier 0): the own rating for that release of a record of the same
-- distribution that shares a vulnerability id with it (advisory_release_ratings).
-- As in vuln_ratings, a record that names several CVEs rates its own
-- findings only; ties: the finding's own record, then the worse severity,
-- source and id. Records and releases without such a rating have no row:
-- their findings keep vuln_ratings' severity.
--   severity_source  kind:source/advisory_id@ecosystem of the rating,
--                    e.g. debian-urgency:debian-tracker/CVE-2023-38545@Debian:12
CREATE VIEW IF NOT EXISTS vuln_release_ratings AS
SELECT a.source AS source, a.advisory_id AS advisory_id, u.ecosystem AS ecosystem,
    argMin((u.severity, u.rating_kind, u.source, u.advisory_id),
        (toUInt8(NOT (u.source = a.source AND u.advisory_id = a.advisory_id)),
         -patchgrid_severity_rank(u.severity), u.source, u.advisory_id)) AS rated,
    rated.1 AS severity,
    concat(rated.2, ':', rated.3, '/', rated.4, '@', u.ecosystem) AS severity_source
FROM (SELECT source, advisory_id, distro, arrayJoin(vuln_ids) AS vid FROM advisory_ratings WHERE distro != '') AS a
INNER JOIN (
    SELECT source, advisory_id, vuln_ids, distro, rating_kind, ecosystem, severity, arrayJoin(vuln_ids) AS vid
    FROM advisory_release_ratings
) AS u ON u.vid = a.vid AND u.distro = a.distro
WHERE (u.source = a.source AND u.advisory_id = a.advisory_id) OR length(arrayFilter(x -> startsWith(x, 'CVE-'), u.vuln_ids)) <= 1
GROUP BY a.source, a.advisory_id, u.ecosystem;

-- kpi_exposures_live (0016), same columns in the same order: severity and
-- severity_source of an exposure are vuln_release_ratings' for the host's
-- release (kpi_hosts.os, its latest scan's os_ecosystem) when it has a row,
-- else kpi_advisories' as before. A resolved exposure of a host that has
-- since changed release is rated for its current release.
DROP VIEW IF EXISTS kpi_exposures_live;
CREATE VIEW IF NOT EXISTS kpi_exposures_live AS
SELECT x.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.dims AS dims,
    x.source AS source, x.advisory_id AS advisory_id,
    multiIf(x.eol = 1, 'high', rr.severity != '', rr.severity, a.severity) AS severity, a.cvss_version AS cvss_version, a.cvss_score AS cvss_score,
    if(x.eol = 1, x.eol_at, a.published) AS published, if(x.eol = 1, x.eol_at, a.fix_published) AS fix_published, a.cves AS cves,
    a.kev AS kev, a.kev_due_date AS kev_due_date,
    a.has_epss AS has_epss, a.epss AS epss, a.epss_percentile AS epss_percentile, if(x.eol = 1, 'none', a.epss_band) AS epss_band,
    x.first_seen AS first_seen, x.last_seen AS last_seen, x.resolved_at AS resolved_at,
    x.reopened AS reopened, x.exposed_now AS is_open,
    if(is_open = 1, now(), x.resolved_at) AS window_end,
    (toInt64(window_end) - toInt64(x.first_seen)) / 86400 AS window_days,
    if(is_open = 1, nan, (toInt64(x.resolved_at) - toInt64(x.first_seen)) / 86400) AS remediation_days,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(published), 0) / 86400) AS ttp_publication_days,
    if(is_open = 1 OR fix_published = toDateTime(0), nan,
        greatest(toInt64(x.resolved_at) - toInt64(fix_published), 0) / 86400) AS ttp_fix_days,
    multiIf(x.eol = 1, concat('endoflife.date:', x.eol_source), rr.severity != '', rr.severity_source, a.severity_source) AS severity_source,
    a.ssvc_exploitation AS ssvc_exploitation,
    if(x.eol = 1, x.eol_at, a.known_at) AS known_at, if(x.eol = 1, x.eol_at, a.disclosed_at) AS disclosed_at,
    toUInt8(if(is_open = 1, nf.no_fix = 0, 1)) AS fix_available,
    greatest(x.first_seen, known_at, fix_published) AS clock_start,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(disclosed_at), 0) / 86400) AS ttp_disclosure_days,
    ee.exception_id AS exception_id, ee.exception_expires_at AS exception_expires_at,
    toUInt8(is_open = 1 AND ee.exception_id != '') AS accepted,
    toUInt8(h.last_scan_at < (SELECT stale_before FROM kpi_stale_limit)) AS stale
FROM (
    SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now,
        toUInt8(0) AS eol, toDateTime(0) AS eol_at, '' AS eol_source
    FROM exposure_history
    UNION ALL
    SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now,
        toUInt8(1) AS eol, eol_at, eol_source
    FROM eol_exposures
) AS x
INNER JOIN kpi_hosts AS h ON h.host_id = x.host_id
LEFT JOIN kpi_advisories AS a ON a.source = x.source AND a.advisory_id = x.advisory_id
LEFT JOIN vuln_release_ratings AS rr ON rr.source = x.source AND rr.advisory_id = x.advisory_id AND rr.ecosystem = h.os
LEFT JOIN (SELECT host_id, inventory_hash FROM host_segments FINAL WHERE is_last = 1) AS l ON l.host_id = x.host_id
LEFT JOIN (
    -- (inventory, advisory) pairs none of whose findings has a fix (0006).
    SELECT inventory_hash, source, advisory_id, toUInt8(1) AS no_fix
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    GROUP BY inventory_hash, source, advisory_id
    HAVING max(status = 'affected') = 0
) AS nf ON nf.inventory_hash = l.inventory_hash AND nf.source = x.source AND nf.advisory_id = x.advisory_id
LEFT JOIN exposure_exceptions AS ee ON ee.host_id = x.host_id AND ee.source = x.source AND ee.advisory_id = x.advisory_id
WHERE x.eol = 1 OR a.advisory_id != ''
SETTINGS join_use_nulls = 0;
