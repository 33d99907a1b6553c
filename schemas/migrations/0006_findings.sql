-- patchgrid:min-server 23.8
-- Findings' severity, CVSS, KEV, EPSS and SSVC resolved per vulnerability
-- across every loaded record of it, and SLA clocks that start when the
-- vulnerability is known and a fix exists; old servers keep 0002's
-- per-record ratings and have no KPI views (0004 and 0005 are skipped there
-- too). Definitions for readers: schemas/VIEWS.md ("Severity and its
-- source", "SLA clock"); the risk formula: analytics/risk/README.md.

-- A vulnerability id as records spell it in aliases: distro ids that wrap a
-- CVE (DEBIAN-CVE-…, UBUNTU-CVE-…, ALPINE-CVE-…) become the CVE, so the
-- Debian record of a CVE, its CVE JSON 5 record, its Red Hat VEX document
-- and the GHSA/PYSEC/GO records that alias it share one id.
CREATE OR REPLACE FUNCTION patchgrid_vuln_id AS (id) ->
    replaceRegexpOne(upper(trimBoth(id)), '^[A-Z]+-(CVE-[0-9]{4}-[0-9]+)$', '\\1');

-- The distribution whose own rating a record is ('' for none): what
-- "the host distribution's own rating" means for a finding of a record of
-- that distribution. AlmaLinux and Rocky rebuild Red Hat and count as it.
CREATE OR REPLACE FUNCTION patchgrid_distro AS (source, id) ->
    multiIf(source = 'debian-tracker' OR match(id, '^(DEBIAN|DSA|DLA|DTSA)-'), 'debian',
            match(id, '^(UBUNTU|USN)-'), 'ubuntu',
            startsWith(source, 'redhat-') OR match(id, '^(RHSA|RHBA|RHEA|ALSA|ALBA|ALEA|RLSA|RLBA|RLEA)-'), 'redhat',
            source = 'alpine-secdb' OR startsWith(id, 'ALPINE-'), 'alpine',
            '');

-- A severity word of advisories.severity in the one vocabulary (unknown for
-- anything else) and its order, worst first.
CREATE OR REPLACE FUNCTION patchgrid_severity AS (s) ->
    if(lower(s) IN ('critical', 'high', 'medium', 'low', 'none'), lower(s), 'unknown');
CREATE OR REPLACE FUNCTION patchgrid_severity_rank AS (s) ->
    multiIf(s = 'critical', 5, s = 'high', 4, s = 'medium', 3, s = 'low', 2, s = 'none', 1, 0);

-- When each advisory record was first loaded: advisories keeps only a
-- record's latest load once merged, so every refresh (analytics/refresh)
-- adds what it sees and min() keeps the earliest. The clock of a record
-- without a published date starts there.
CREATE TABLE IF NOT EXISTS advisory_known (
    source          String,
    advisory_id     String,
    first_loaded_at SimpleAggregateFunction(min, DateTime)
) ENGINE = AggregatingMergeTree
ORDER BY (source, advisory_id);

-- One row per current advisory record with what it says about its
-- vulnerability:
--   vuln_ids     patchgrid_vuln_id of its id and aliases
--   distro       patchgrid_distro
--   severity     normalized; rating_kind '' when unknown, else how it
--                rates: debian-urgency, ubuntu-priority, redhat-severity,
--                alpine-rating (a distribution's own), cvss (a CVSS v3.x/v4
--                vector of OSV `severity` or the Node.js WG, score computed
--                from it; or a feed's base score without vector), cve-cvss (CVE JSON 5: the CNA's, else CISA
--                vulnrichment's CVSS), ghsa (GHSA's qualitative rating),
--                advisory (another feed's word)
--   exploitation SSVC Exploitation of a CVE JSON 5 record (none, poc,
--                active; '' when absent)
CREATE VIEW IF NOT EXISTS advisory_ratings AS
SELECT source, advisory_id, published, loaded_at,
    arrayDistinct(arrayFilter(x -> x != '', arrayMap(x -> patchgrid_vuln_id(x), arrayConcat([advisory_id], aliases, cves)))) AS vuln_ids,
    patchgrid_distro(source, advisory_id) AS distro,
    patchgrid_severity(severity) AS severity,
    cvss_version, cvss_vector, round(toFloat64(cvss_score), 1) AS cvss_score,
    multiIf(severity = 'unknown', '',
            distro = 'debian', 'debian-urgency',
            distro = 'ubuntu', 'ubuntu-priority',
            distro = 'redhat', 'redhat-severity',
            distro != '', concat(distro, '-rating'),
            source = 'cve', 'cve-cvss',
            cvss_vector != '' OR cvss_score > 0, 'cvss',
            startsWith(advisory_id, 'GHSA-'), 'ghsa',
            'advisory') AS rating_kind,
    if(source = 'cve', lower(JSONExtractString(specific, 'ssvc', 'exploitation')), '') AS exploitation
FROM advisories FINAL
WHERE withdrawn = 0;

-- Every current record (source, advisory_id) with each record that shares
-- a vulnerability id with it (itself included): the records of the same
-- vulnerability, one alias hop away.
CREATE VIEW IF NOT EXISTS vuln_links AS
SELECT DISTINCT a.source AS source, a.advisory_id AS advisory_id, r.source AS r_source, r.advisory_id AS r_advisory_id
FROM (SELECT source, advisory_id, arrayJoin(vuln_ids) AS vid FROM advisory_ratings) AS a
INNER JOIN (SELECT source, advisory_id, arrayJoin(vuln_ids) AS vid FROM advisory_ratings) AS r ON r.vid = a.vid;

-- Per current record: the rating of its vulnerability by precedence, over
-- every linked record that rates it (lower rank wins):
--   1 the host distribution's own rating: a record of the same distro as
--     the finding's record (Debian tracker urgency, Ubuntu priority, Red
--     Hat severity from CSAF/VEX)
--   2 a CVSS v3.x/v4 vector of an OSV record (rating_kind cvss)
--   3 a CVE JSON 5 record's CVSS (cve-cvss)
--   4 another distribution's own rating
--   5 GHSA's qualitative rating, another feed's word
-- Linked records that name several CVEs count for their own findings only.
-- Ties: the finding's own record, then the worse severity, the higher
-- score, source and id. CVSS comes from the chosen record when it has a
-- score, else from the best-ranked linked record that has one (the same
-- order). cves are
-- the CVE ids of every linked record; exploitation the worst SSVC status.
CREATE VIEW IF NOT EXISTS vuln_ratings AS
SELECT l.source AS source, l.advisory_id AS advisory_id,
    argMinIf((r.severity, r.rating_kind, r.source, r.advisory_id),
        (multiIf(r.distro != '' AND r.distro = patchgrid_distro(l.source, l.advisory_id), 1, r.rating_kind = 'cvss', 2,
                 r.rating_kind = 'cve-cvss', 3, r.distro != '', 4, 5),
         toUInt8(NOT (r.source = l.source AND r.advisory_id = l.advisory_id)),
         -patchgrid_severity_rank(r.severity), -r.cvss_score, r.source, r.advisory_id) AS rating_key,
        r.rating_kind != '') AS rated,
    argMinIf((r.cvss_version, r.cvss_score), rating_key, r.rating_kind != '' AND (r.cvss_vector != '' OR r.cvss_score > 0)) AS scored,
    if(rated.2 = '', 'unknown', rated.1) AS severity,
    if(rated.2 = '', '', concat(rated.2, ':', rated.3, '/', rated.4)) AS severity_source,
    scored.1 AS cvss_version, scored.2 AS cvss_score,
    arraySort(arrayDistinct(arrayFilter(x -> startsWith(x, 'CVE-'), groupArrayArray(r.vuln_ids)))) AS cves,
    multiIf(has(groupArray(r.exploitation), 'active'), 'active', has(groupArray(r.exploitation), 'poc'), 'poc',
            has(groupArray(r.exploitation), 'none'), 'none', '') AS ssvc_exploitation,
    minIf(r.published, r.published > toDateTime(0)) AS first_published
FROM vuln_links AS l
INNER JOIN advisory_ratings AS r ON r.source = l.r_source AND r.advisory_id = l.r_advisory_id
-- A record that names several CVEs (a DSA, USN or RHSA) speaks for all of
-- them together: it rates and adds CVEs to its own findings only, never to
-- a record of one of its CVEs.
WHERE (r.source = l.source AND r.advisory_id = l.advisory_id) OR length(arrayFilter(x -> startsWith(x, 'CVE-'), r.vuln_ids)) <= 1
GROUP BY l.source, l.advisory_id;

-- kpi_advisories (0004) with every input resolved per vulnerability
-- (vuln_ratings): severity, cvss_version, cvss_score, cves (so KEV and EPSS
-- join through aliases), plus
--   severity_source   rating_kind:source/advisory_id of the record the
--                     severity comes from; '' when unknown (no linked
--                     record rates it)
--   ssvc_exploitation none, poc, active or ''
--   known_at          when the vulnerability became known to us: the
--                     record's published, or when absent the first time
--                     it was loaded (advisory_known)
--   disclosed_at      the earliest published date of any linked record,
--                     at most known_at
DROP VIEW IF EXISTS kpi_advisories;
CREATE VIEW IF NOT EXISTS kpi_advisories AS
SELECT a.source AS source, a.advisory_id AS advisory_id,
    v.severity AS severity, v.cvss_version AS cvss_version, v.cvss_score AS cvss_score,
    a.published AS published, v.cves AS cves,
    f.fix_published AS fix_published,
    r.kev AS kev, r.kev_due_date AS kev_due_date,
    r.has_epss AS has_epss, r.epss AS epss, r.epss_percentile AS epss_percentile,
    multiIf(r.has_epss = 0, 'none', r.epss < 0.01, '<1%', r.epss < 0.1, '1-10%', r.epss < 0.5, '10-50%', '>=50%') AS epss_band,
    v.severity_source AS severity_source, v.ssvc_exploitation AS ssvc_exploitation,
    if(a.published > toDateTime(0), a.published, k.first_loaded_at) AS known_at,
    if(v.first_published > toDateTime(0), least(v.first_published, known_at), known_at) AS disclosed_at
FROM (SELECT * FROM advisories FINAL WHERE withdrawn = 0) AS a
INNER JOIN vuln_ratings AS v ON v.source = a.source AND v.advisory_id = a.advisory_id
LEFT JOIN (
    SELECT source, advisory_id, min(t) AS first_loaded_at
    FROM (
        SELECT source, advisory_id, loaded_at AS t FROM advisories
        UNION ALL
        SELECT source, advisory_id, first_loaded_at AS t FROM advisory_known
    )
    GROUP BY source, advisory_id
) AS k ON k.source = a.source AND k.advisory_id = a.advisory_id
LEFT JOIN (
    SELECT source, advisory_id, record_hash,
        minIf(fix_published, fix_published > toDateTime(0)) AS fix_published
    FROM affected_ranges
    GROUP BY source, advisory_id, record_hash
) AS f ON f.source = a.source AND f.advisory_id = a.advisory_id AND f.record_hash = a.record_hash
LEFT JOIN (
    SELECT c.source AS source, c.advisory_id AS advisory_id,
        toUInt8(max(k.cve != '')) AS kev,
        minIf(k.due_date, k.cve != '') AS kev_due_date,
        toUInt8(max(e.cve != '')) AS has_epss,
        max(e.epss) AS epss,
        max(e.percentile) AS epss_percentile
    FROM (SELECT source, advisory_id, arrayJoin(cves) AS cve FROM vuln_ratings) AS c
    LEFT JOIN (SELECT cve, due_date FROM kev FINAL) AS k ON k.cve = c.cve
    LEFT JOIN (SELECT cve, epss, percentile FROM epss FINAL) AS e ON e.cve = c.cve
    GROUP BY c.source, c.advisory_id
) AS r ON r.source = a.source AND r.advisory_id = a.advisory_id
SETTINGS join_use_nulls = 0;

-- kpi_exposures_live: 0005's columns, same order and meaning (severity, CVSS,
-- cves, KEV and EPSS now per vulnerability), then
--   severity_source, ssvc_exploitation, known_at, disclosed_at  (kpi_advisories)
--   fix_available  0 while open when none of the host's current findings
--                  of the advisory has a released fix (every one unfixed or
--                  will_not_fix); 1 otherwise (and once resolved)
--   clock_start    when the SLA clock starts: the latest of first_seen,
--                  known_at and fix_published (a finding seen before its
--                  fix existed starts its clock when the fix appears)
--   ttp_disclosure_days  resolved_at - disclosed_at, at least 0; nan while open
-- Time to patch and MTTR from first seen stay remediation_days
-- (resolved_at - first_seen).
DROP VIEW IF EXISTS kpi_exposures_live;
CREATE VIEW IF NOT EXISTS kpi_exposures_live AS
SELECT x.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.dims AS dims,
    x.source AS source, x.advisory_id AS advisory_id,
    a.severity AS severity, a.cvss_version AS cvss_version, a.cvss_score AS cvss_score,
    a.published AS published, a.fix_published AS fix_published, a.cves AS cves,
    a.kev AS kev, a.kev_due_date AS kev_due_date,
    a.has_epss AS has_epss, a.epss AS epss, a.epss_percentile AS epss_percentile, a.epss_band AS epss_band,
    x.first_seen AS first_seen, x.last_seen AS last_seen, x.resolved_at AS resolved_at,
    x.reopened AS reopened, x.exposed_now AS is_open,
    if(is_open = 1, now(), x.resolved_at) AS window_end,
    (toInt64(window_end) - toInt64(x.first_seen)) / 86400 AS window_days,
    if(is_open = 1, nan, (toInt64(x.resolved_at) - toInt64(x.first_seen)) / 86400) AS remediation_days,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(a.published), 0) / 86400) AS ttp_publication_days,
    if(is_open = 1 OR a.fix_published = toDateTime(0), nan,
        greatest(toInt64(x.resolved_at) - toInt64(a.fix_published), 0) / 86400) AS ttp_fix_days,
    a.severity_source AS severity_source, a.ssvc_exploitation AS ssvc_exploitation,
    a.known_at AS known_at, a.disclosed_at AS disclosed_at,
    toUInt8(if(is_open = 1, nf.no_fix = 0, 1)) AS fix_available,
    greatest(x.first_seen, a.known_at, a.fix_published) AS clock_start,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(a.disclosed_at), 0) / 86400) AS ttp_disclosure_days
FROM exposure_history AS x
INNER JOIN kpi_hosts AS h ON h.host_id = x.host_id
INNER JOIN kpi_advisories AS a ON a.source = x.source AND a.advisory_id = x.advisory_id
LEFT JOIN (SELECT host_id, inventory_hash FROM host_segments FINAL WHERE is_last = 1) AS l ON l.host_id = x.host_id
LEFT JOIN (
    -- (inventory, advisory) pairs none of whose findings has a fix: few,
    -- so the hash table stays small at fleet scale.
    SELECT inventory_hash, source, advisory_id, toUInt8(1) AS no_fix
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    GROUP BY inventory_hash, source, advisory_id
    HAVING max(status = 'affected') = 0
) AS nf ON nf.inventory_hash = l.inventory_hash AND nf.source = x.source AND nf.advisory_id = x.advisory_id
SETTINGS join_use_nulls = 0;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS severity_source String;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS ssvc_exploitation String;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS known_at DateTime;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS disclosed_at DateTime;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS fix_available UInt8;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS clock_start DateTime;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS ttp_disclosure_days Float64;
DROP VIEW IF EXISTS kpi_exposures;
CREATE VIEW IF NOT EXISTS kpi_exposures AS
SELECT host_id, hostname, owner, ring, criticality, internet_facing, os,
    patchgrid_kpi_dims(ring, owner, os, criticality) AS dims,
    * EXCEPT (host_id, hostname, owner, ring, criticality, internet_facing, os)
FROM exposure_facts;

-- kpi_exposure_sla (0004) with the clock of this migration:
--   sla_deadline  clock_start + sla_days; for a KEV advisory under a policy
--                 with kev_due_date = 1, the end (23:59:59 UTC) of the KEV
--                 dueDate, or clock_start when that is later
--   sla_state     'no_fix' (open, no fix released: never overdue), 'met',
--                 'missed', 'overdue', 'open' as in 0004
--   days_past_sla (resolved_at or now()) - sla_deadline, at least 0; 0 for no_fix
DROP VIEW IF EXISTS kpi_exposure_sla;
CREATE VIEW IF NOT EXISTS kpi_exposure_sla AS
SELECT e.*, p.policy AS policy, p.sla_days AS sla_days,
    toUInt8(p.kev_due_date = 1 AND e.kev = 1 AND e.kev_due_date > toDate(0)) AS kev_deadline,
    if(kev_deadline = 1,
        greatest(toDateTime(e.kev_due_date, 'UTC') + 86399, e.clock_start),
        e.clock_start + toIntervalDay(p.sla_days)) AS sla_deadline,
    multiIf(e.is_open = 1 AND e.fix_available = 0, 'no_fix',
            e.is_open = 0 AND e.resolved_at <= sla_deadline, 'met',
            e.is_open = 0, 'missed',
            now() > sla_deadline, 'overdue',
            'open') AS sla_state,
    if(sla_state = 'no_fix', 0, greatest(toInt64(e.window_end) - toInt64(sla_deadline), 0) / 86400) AS days_past_sla
FROM kpi_exposures AS e
INNER JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.severity = e.severity;

-- exposure_risk (0004) with known exploitation from SSVC: risk_kev is 15
-- in CISA KEV (+5 once its dueDate passed while exposed), else 15 for SSVC
-- exploitation 'active' and 7.5 for 'poc' (0..20). The other parts as in
-- 0004; a no_fix exposure has no age past SLA.
DROP VIEW IF EXISTS exposure_risk;
CREATE VIEW IF NOT EXISTS exposure_risk AS
SELECT *,
    round(3.5 * if(cvss_score > 0, cvss_score,
        multiIf(severity = 'critical', 9.5, severity = 'high', 7.5, severity IN ('medium', 'unknown'), 5.0, severity = 'low', 2.5, 0.0)), 2) AS risk_cvss,
    round(10 * epss + 5 * epss_percentile, 2) AS risk_epss,
    if(kev = 1, 15.0 + if(kev_due_date > toDate(0) AND window_end > toDateTime(kev_due_date, 'UTC') + 86399, 5.0, 0.0),
        multiIf(ssvc_exploitation = 'active', 15.0, ssvc_exploitation = 'poc', 7.5, 0.0)) AS risk_kev,
    2.5 * if(criticality = 0, 2, least(criticality, 4)) AS risk_asset,
    if(internet_facing = 1, 10.0, 0.0) AS risk_internet,
    round(10 * least(days_past_sla, 30) / 30, 2) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    multiIf(risk_score >= 70, 'critical', risk_score >= 50, 'high', risk_score >= 25, 'medium', 'low') AS risk_level
FROM kpi_exposure_sla
WHERE policy = 'default';

-- finding_risk_live: 0005's columns, then severity_source,
-- ssvc_exploitation, known_at and clock_start of the exposure.
DROP VIEW IF EXISTS finding_risk_live;
CREATE VIEW IF NOT EXISTS finding_risk_live AS
SELECT r.host_id AS host_id, r.hostname AS hostname, r.owner AS owner, r.ring AS ring,
    r.criticality AS criticality, r.internet_facing AS internet_facing, r.os AS os,
    r.source AS source, r.advisory_id AS advisory_id, r.cves AS cves, r.severity AS severity,
    r.cvss_score AS cvss_score, r.has_epss AS has_epss, r.epss AS epss, r.epss_percentile AS epss_percentile,
    r.kev AS kev, r.kev_due_date AS kev_due_date,
    f.ecosystem AS ecosystem, f.name AS package, f.version AS installed_version, f.arch AS arch,
    f.match_name AS match_name, f.match_version AS match_version,
    f.status AS status, f.fixed AS fixed_version,
    patchgrid_kernel_state(f.name, f.version, f.arch, l.kernel_running) AS kernel_state,
    r.published AS published, r.fix_published AS fix_published,
    r.first_seen AS first_seen, r.sla_deadline AS sla_deadline, r.sla_state AS sla_state, r.days_past_sla AS days_past_sla,
    r.risk_cvss AS risk_cvss, r.risk_epss AS risk_epss, r.risk_kev AS risk_kev, r.risk_asset AS risk_asset,
    r.risk_internet AS risk_internet, r.risk_sla AS risk_sla, r.risk_score AS risk_score, r.risk_level AS risk_level,
    r.severity_source AS severity_source, r.ssvc_exploitation AS ssvc_exploitation,
    r.known_at AS known_at, r.clock_start AS clock_start
FROM (SELECT * FROM exposure_risk WHERE is_open = 1) AS r
INNER JOIN (SELECT host_id, inventory_hash, kernel_running FROM host_segments FINAL WHERE is_last = 1) AS l
    ON l.host_id = r.host_id
INNER JOIN (
    SELECT inventory_hash, source, advisory_id, ecosystem, name, version, arch, match_name, match_version, status, fixed
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
) AS f ON f.inventory_hash = l.inventory_hash AND f.source = r.source AND f.advisory_id = r.advisory_id
WHERE kernel_state != 'not_running';
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS severity_source String;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS ssvc_exploitation String;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS known_at DateTime;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS clock_start DateTime;
DROP VIEW IF EXISTS finding_risk;
CREATE VIEW IF NOT EXISTS finding_risk AS SELECT * FROM finding_risk_snapshot;

-- kpi_mttr_live: 0005's columns, then MTTR from disclosure over resolved
-- exposures: mttr_disclosure_days (mean of ttp_disclosure_days) and
-- median_disclosure_days (quantileExact's median, as median_days).
DROP VIEW IF EXISTS kpi_mttr_live;
CREATE VIEW IF NOT EXISTS kpi_mttr_live AS
SELECT dimension, dim_value, severity, resolved, mttr_days, median_days, mttr_disclosure_days, median_disclosure_days
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        sumIf(rem * n, is_open = 0) / resolved AS mttr_days,
        arraySort(groupArrayIf((rem, n), is_open = 0)) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, rem_hist)))].1) AS median_days,
        sumIf(dis * n, is_open = 0) / resolved AS mttr_disclosure_days,
        arraySort(groupArrayIf((dis, n), is_open = 0)) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, dis_hist)))].1) AS median_disclosure_days
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, remediation_days) AS rem,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, rem, dis
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
);
ALTER TABLE kpi_mttr_snapshot ADD COLUMN IF NOT EXISTS mttr_disclosure_days Float64;
ALTER TABLE kpi_mttr_snapshot ADD COLUMN IF NOT EXISTS median_disclosure_days Float64;
DROP VIEW IF EXISTS kpi_mttr;
CREATE VIEW IF NOT EXISTS kpi_mttr AS SELECT * FROM kpi_mttr_snapshot;

-- kpi_time_to_patch_live: 0005's columns, then time to patch from
-- disclosure (ttp_disclosure_days) and from first seen (remediation_days),
-- mean and median over resolved exposures.
DROP VIEW IF EXISTS kpi_time_to_patch_live;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch_live AS
SELECT dimension, dim_value, severity, resolved, with_fix_date,
    from_publication_avg_days, from_publication_median_days, from_fix_avg_days, from_fix_median_days,
    from_disclosure_avg_days, from_disclosure_median_days, from_first_seen_avg_days, from_first_seen_median_days
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        toUInt64(sumIf(n, has_fix = 1)) AS with_fix_date,
        sumIf(pub * n, is_open = 0) / resolved AS from_publication_avg_days,
        arraySort(groupArrayIf((pub, n), is_open = 0)) AS pub_hist,
        if(resolved = 0, nan, pub_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, pub_hist)))].1) AS from_publication_median_days,
        sumIf(fix * n, has_fix = 1) / with_fix_date AS from_fix_avg_days,
        arraySort(groupArrayIf((fix, n), has_fix = 1)) AS fix_hist,
        if(with_fix_date = 0, nan, fix_hist[arrayFirstIndex(c -> c > floor(0.5 * with_fix_date), arrayCumSum(arrayMap(x -> x.2, fix_hist)))].1) AS from_fix_median_days,
        sumIf(dis * n, is_open = 0) / resolved AS from_disclosure_avg_days,
        arraySort(groupArrayIf((dis, n), is_open = 0)) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, dis_hist)))].1) AS from_disclosure_median_days,
        sumIf(rem * n, is_open = 0) / resolved AS from_first_seen_avg_days,
        arraySort(groupArrayIf((rem, n), is_open = 0)) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, rem_hist)))].1) AS from_first_seen_median_days
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, ttp_publication_days) AS pub,
            toUInt8(isFinite(ttp_fix_days)) AS has_fix, if(has_fix = 1, ttp_fix_days, 0) AS fix,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis, if(is_open = 1, 0, remediation_days) AS rem, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, pub, has_fix, fix, dis, rem
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
);
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS from_disclosure_avg_days Float64;
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS from_disclosure_median_days Float64;
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS from_first_seen_avg_days Float64;
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS from_first_seen_median_days Float64;
DROP VIEW IF EXISTS kpi_time_to_patch;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch AS SELECT * FROM kpi_time_to_patch_snapshot;

-- kpi_sla_compliance_live: 0005's columns, then no_fix: open exposures
-- with no fix released, reported apart (never in met, missed, overdue or
-- open_in_sla, so compliance_pct leaves them out).
DROP VIEW IF EXISTS kpi_sla_compliance_live;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance_live AS
SELECT policy, d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    toUInt64(sum(n)) AS exposures,
    toUInt64(sumIf(n, sla_state = 'met')) AS met,
    toUInt64(sumIf(n, sla_state = 'missed')) AS missed,
    toUInt64(sumIf(n, sla_state = 'overdue')) AS overdue,
    toUInt64(sumIf(n, sla_state = 'open')) AS open_in_sla,
    100 * met / (met + missed + overdue) AS compliance_pct,
    toUInt64(sumIf(n, sla_state = 'no_fix')) AS no_fix
FROM (
    SELECT policy, ring, owner, os, criticality, severity, sla_state, count() AS n
    FROM kpi_exposure_sla
    GROUP BY policy, ring, owner, os, criticality, severity, sla_state
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity;
ALTER TABLE kpi_sla_compliance_snapshot ADD COLUMN IF NOT EXISTS no_fix UInt64;
DROP VIEW IF EXISTS kpi_sla_compliance;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance AS SELECT * FROM kpi_sla_compliance_snapshot;
