-- Advisories and risk feeds. 18.16-compatible DDL (see 0001).
--
-- Versioning of records: every load of a record writes its ranges under the
-- record's content hash (record_hash) first, then the advisories row that
-- names that hash. Readers join ranges to the current advisories row (FINAL),
-- so a modified record's old ranges stop counting at once, a load that fails
-- midway leaves the previous state in force, and loading the same record
-- twice changes nothing.

CREATE TABLE IF NOT EXISTS advisories (
    source          String,   -- feed: osv, alpine-secdb, debian-tracker, redhat-csaf, redhat-vex, pypa, nodejs-wg
    advisory_id     String,   -- OSV id / DSA-… / RHSA-… / CVE-… per feed
    record_hash     String,   -- sha256 of the normalized record: identifies its ranges
    modified        DateTime,
    published       DateTime,
    withdrawn       UInt8,    -- 1: the record no longer matches
    aliases         Array(String), -- CVE ↔ GHSA ↔ distro ids; advisory_id not repeated
    cves            Array(String), -- the CVE ids among advisory_id and aliases (KEV/EPSS join key)
    summary         String,
    severity        String,   -- critical, high, medium, low, none, unknown
    cvss_version    String,   -- '3.1', '4.0', '' when none
    cvss_vector     String,
    cvss_score      Float32,  -- base score computed from the vector (0 when none)
    file            String,   -- provenance: file path or URL, with the member inside an archive
    specific        String,   -- database_specific / ecosystem_specific JSON, kept as found
    loaded_at       DateTime
) ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (source, advisory_id);

-- One row per (ecosystem with release, package, advisory, range).
-- A package version v (key v_key) is in a range when
--   v_key >= introduced_key
--   AND (fixed_key = '' OR v_key < fixed_key)
--   AND (last_affected_key = '' OR v_key <= last_affected_key)
-- Explicit OSV `versions` entries are ranges with introduced = last_affected.
-- status says what a match means: affected (a fix exists: fixed is set),
-- unfixed (no fix released), will_not_fix, not_affected (never a finding;
-- kept so explain can show it).
CREATE TABLE IF NOT EXISTS affected_ranges (
    source            String,
    advisory_id       String,
    record_hash       String,
    ecosystem         String,  -- OSV ecosystem with release: Debian:12, Alpine:v3.18, Red Hat:enterprise_linux:9, PyPI
    package           String,  -- as the advisory keys it: source package for distros
    range_idx         UInt16,
    range_type        String,  -- ECOSYSTEM, SEMVER, VERSIONS, SECDB, CSAF, …
    status            String,
    comparator        String,  -- schemas/version comparator name: dpkg, rpm, apk, semver, …
    introduced        String,
    introduced_key    String,
    fixed             String,
    fixed_key         String,
    last_affected     String,
    last_affected_key String,
    fix_published     DateTime -- when the fix became available, when the feed says (else 0)
) ENGINE = ReplacingMergeTree
ORDER BY (ecosystem, package, source, advisory_id, record_hash, range_idx);

CREATE TABLE IF NOT EXISTS kev (
    cve            String,
    vendor         String,
    product        String,
    name           String,
    date_added     Date,
    due_date       Date,
    ransomware     String,   -- Known / Unknown
    catalog_version String,
    loaded_at      DateTime
) ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY cve;

CREATE TABLE IF NOT EXISTS epss (
    cve           String,
    epss          Float64,
    percentile    Float64,
    score_date    Date,
    model_version String,
    loaded_at     DateTime
) ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY cve;

-- One row per load of one source location: what feeds status shows.
CREATE TABLE IF NOT EXISTS feed_loads (
    source          String,
    location        String,
    started_at      DateTime,
    finished_at     DateTime,
    records         UInt64,   -- records read
    loaded          UInt64,   -- new records
    updated         UInt64,   -- records whose content changed
    unchanged       UInt64,
    withdrawn       UInt64,
    skipped         UInt64,   -- malformed, reported with reason
    newest_modified DateTime,
    error           String
) ENGINE = MergeTree
ORDER BY (source, started_at);
