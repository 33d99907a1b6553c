-- End-of-life releases, stale hosts and packages that cannot be matched:
-- the verdicts that keep a host that merely looks clean from counting as
-- clean. Runs on every server (18.16 included). Definitions for readers:
-- schemas/VIEWS.md ("End-of-life releases", "Stale hosts", "Unmatched
-- packages").

-- OS releases and the date their vendor's free security support ends, as
-- endoflife.date publishes them (the cited page of each row; data of
-- endoflife-date/endoflife.date products/{debian,ubuntu,alpine-linux,rhel}.md,
-- read 2026-12-03). Which date counts: Debian's LTS end (the last free
-- security support), Ubuntu's standard security maintenance (ESM needs Ubuntu
-- Pro), Alpine's branch end of support, RHEL's maintenance support (ELS is a
-- paid add-on). Ecosystems are spelled as scans' os_ecosystem is (OSV
-- ecosystem with release). Newer dates are a new migration that drops and
-- recreates this view; releases not listed are never judged end-of-life.
CREATE VIEW IF NOT EXISTS eol_releases AS
SELECT r.1 AS ecosystem, toDate(r.2) AS eol_date, r.3 AS basis, r.4 AS source
FROM (SELECT arrayJoin([
    ('Debian:6', '2016-02-29', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:7', '2018-05-31', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:8', '2020-06-30', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:9', '2022-07-01', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:10', '2024-06-30', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:11', '2026-08-31', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Debian:12', '2028-06-10', 'Debian LTS ends (security support incl. LTS)', 'https://endoflife.date/debian'),
    ('Ubuntu:14.04:LTS', '2019-04-02', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:16.04:LTS', '2021-04-02', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:18.04:LTS', '2023-05-31', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:18.10', '2019-07-18', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:19.04', '2020-01-23', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:19.10', '2020-07-06', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:20.04:LTS', '2025-05-31', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:20.10', '2021-07-22', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:21.04', '2022-01-20', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:21.10', '2022-07-14', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:22.04:LTS', '2027-04-01', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:22.10', '2023-07-20', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:23.04', '2024-01-20', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:23.10', '2024-07-12', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:24.04:LTS', '2029-05-31', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:24.10', '2025-07-10', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:25.04', '2026-01-17', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:25.10', '2026-07-01', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Ubuntu:26.04:LTS', '2031-04-30', 'Ubuntu standard security maintenance ends (ESM/Pro not assumed)', 'https://endoflife.date/ubuntu'),
    ('Alpine:v3.0', '2016-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.1', '2016-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.2', '2017-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.3', '2017-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.4', '2018-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.5', '2018-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.6', '2019-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.7', '2019-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.8', '2020-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.9', '2020-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.10', '2021-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.11', '2021-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.12', '2022-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.13', '2022-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.14', '2023-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.15', '2023-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.16', '2024-05-23', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.17', '2024-11-22', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.18', '2025-05-09', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.19', '2025-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.20', '2026-04-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.21', '2026-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.22', '2027-05-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Alpine:v3.23', '2027-11-01', 'Alpine branch end of support', 'https://endoflife.date/alpine-linux'),
    ('Red Hat:enterprise_linux:5', '2017-03-31', 'RHEL maintenance support ends (paid ELS not assumed)', 'https://endoflife.date/rhel'),
    ('Red Hat:enterprise_linux:6', '2020-11-30', 'RHEL maintenance support ends (paid ELS not assumed)', 'https://endoflife.date/rhel'),
    ('Red Hat:enterprise_linux:7', '2024-06-30', 'RHEL maintenance support ends (paid ELS not assumed)', 'https://endoflife.date/rhel'),
    ('Red Hat:enterprise_linux:8', '2029-05-31', 'RHEL maintenance support ends (paid ELS not assumed)', 'https://endoflife.date/rhel'),
    ('Red Hat:enterprise_linux:9', '2032-05-31', 'RHEL maintenance support ends (paid ELS not assumed)', 'https://endoflife.date/rhel')
]) AS r);

-- Each host's latest scan, and how many whole days ago it was taken. A host
-- whose last scan is older than the stale limit (default 3 days; `run
-- --stale-after`, the API's stale_after) is STALE: its last state is not
-- its current state, so it never counts as patched or compliant.
CREATE VIEW IF NOT EXISTS host_last_scan AS
SELECT host_id, latest.1 AS scan_id, latest.2 AS last_scanned_at, latest.3 AS hostname,
    latest.4 AS os_ecosystem, latest.5 AS inventory_hash,
    intDiv(toInt64(toUInt32(now())) - toInt64(toUInt32(latest.2)), 86400) AS days_since_scan
FROM (
    SELECT host_id, argMax((scan_id, scanned_at, hostname, os_ecosystem, inventory_hash), (scanned_at, scan_id)) AS latest
    FROM scans
    GROUP BY host_id
);

-- One finding per host whose latest scan is of a release past its end of
-- life (eol_releases): no feed covers such a release any more, so its
-- package findings alone would make it look clean.
CREATE VIEW IF NOT EXISTS eol_findings AS
SELECT host_id, hostname, os_ecosystem, last_scanned_at, eol_date, basis, source,
    toInt64(toRelativeDayNum(today())) - toInt64(toRelativeDayNum(eol_date)) AS days_past_eol
FROM host_last_scan
ALL INNER JOIN (
    SELECT ecosystem AS os_ecosystem, eol_date, basis, source FROM eol_releases
) AS releases USING (os_ecosystem)
WHERE eol_date <= today();

-- Packages of each host's current inventory that matching cannot judge,
-- with why:
--   os_release_unknown     a distro package whose release is not known
--                          (ecosystem "Debian" without ":12"): no distro
--                          advisory can match it; rescan with --os
--   version_not_understood the ecosystem's version encoder rejected the
--                          version (or has none): it matches nothing
--   no_advisories_loaded   no loaded advisory covers its ecosystem with
--                          release at all (e.g. a Debian 11 host when only
--                          Debian 12 records are loaded)
CREATE VIEW IF NOT EXISTS unmatched_packages AS
SELECT host_id, ecosystem, name, version,
    multiIf(
        position(ecosystem, ':') = 0 AND ecosystem IN ('Debian', 'Ubuntu', 'Alpine', 'Red Hat', 'AlmaLinux', 'Rocky Linux', 'openSUSE', 'SUSE', 'openEuler', 'Mageia'), 'os_release_unknown',
        v_key = '', 'version_not_understood',
        ecosystem NOT IN (SELECT DISTINCT ecosystem FROM affected_ranges), 'no_advisories_loaded',
        '') AS reason
FROM (SELECT host_id, inventory_hash FROM host_last_scan) AS hosts
ALL INNER JOIN (
    SELECT DISTINCT inventory_hash, ecosystem, name, version, v_key FROM inventory_packages
) AS packages USING (inventory_hash)
WHERE reason != '';

-- Package names are now compared per ecosystem at match time (PyPI by PEP
-- 503, NuGet and Packagist case-insensitively: analytics/match names.go).
-- Versions and inventories of those ecosystems that an earlier run marked
-- done were matched under exact names: mark them not done, so the next
-- incremental run matches them again and fans their findings out (a
-- mutation: it applies in the background; running it twice only repeats
-- the rematch).
ALTER TABLE match_done_versions DELETE WHERE ecosystem IN ('PyPI', 'NuGet', 'Packagist');
ALTER TABLE match_done_inventories DELETE WHERE inventory_hash IN (
    SELECT inventory_hash FROM inventory_packages WHERE ecosystem IN ('PyPI', 'NuGet', 'Packagist'));
