-- Inventories as scanners report them. Works on every supported ClickHouse,
-- including the 2018 server Debian packages (no LowCardinality, CODEC, TTL or
-- DateTime64 here).

-- One row per scan. A host's current inventory is the inventory_hash of its
-- latest scan, so a package that disappears from a host disappears from its
-- current inventory; heartbeats repeat the previous hash.
-- ReplacingMergeTree on the full key makes a redelivered scan a no-op.
CREATE TABLE IF NOT EXISTS scans (
    host_id            String,
    scan_id            String,
    scanned_at         DateTime,
    received_at        DateTime,
    hostname           String,
    os_id              String,
    os_version         String,
    os_pretty          String,
    os_ecosystem       String,
    kernel_running     String,
    kernels_installed  Array(String),
    inventory_hash     String,
    heartbeat          UInt8,
    package_count      UInt32,
    owner              String,
    ring               String,
    criticality        UInt8,
    internet_facing    UInt8,
    tags               Array(String),
    maintenance_window String,
    warnings           Array(String),
    schema_version     UInt16
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(scanned_at)
ORDER BY (host_id, scanned_at, scan_id);

-- Package lists, stored once per distinct inventory_hash: hosts with the
-- same packages share rows, and a heartbeat stores none.
-- match_name/match_version are what advisories are keyed by (dpkg Source,
-- apk origin, rpm source RPM; else the package itself); v_key is the
-- byte-comparable key of match_version (schemas/version).
CREATE TABLE IF NOT EXISTS inventory_packages (
    inventory_hash String,
    ecosystem      String,
    name           String,
    version        String,
    arch           String,
    source_name    String,
    source_version String,
    match_name     String,
    match_version  String,
    v_key          String,
    purl           String,
    location       String
) ENGINE = ReplacingMergeTree
ORDER BY (inventory_hash, ecosystem, name, arch, version, location);
