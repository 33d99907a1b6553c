package feeds

// The statements of feed loading and feeds status. Writes go through
// store.Insert with the column lists below.

const (
	// Current record hash per advisory of one source.
	queryCurrentHashes = `SELECT advisory_id, record_hash FROM advisories FINAL WHERE source = ?`
	queryCurrentKEV    = `SELECT cve, vendor, product, name, date_added, due_date, ransomware, catalog_version FROM kev FINAL`
	queryCurrentEPSS   = `SELECT cve, epss, percentile, score_date, model_version FROM epss FINAL`

	// feeds status: records per source, and each source's last load.
	queryStatusAdvisories = `SELECT source, count(), sum(withdrawn), max(modified) FROM advisories FINAL GROUP BY source ORDER BY source`
	queryStatusLoads      = `SELECT source, max(finished_at), argMax(location, finished_at), argMax(error, finished_at), argMax(loaded + updated, finished_at), argMax(skipped, finished_at) FROM feed_loads GROUP BY source ORDER BY source`
	queryStatusKEV        = `SELECT count(), max(date_added), any(catalog_version) FROM kev FINAL`
	queryStatusEPSS       = `SELECT count(), max(score_date), any(model_version) FROM epss FINAL`
)

var (
	advisoryColumns = []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn", "aliases", "cves", "summary", "severity", "cvss_version", "cvss_vector", "cvss_score", "file", "specific", "loaded_at"}
	rangeColumns    = []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "range_type", "status", "comparator", "introduced", "introduced_key", "fixed", "fixed_key", "last_affected", "last_affected_key", "fix_published"}
	kevColumns      = []string{"cve", "vendor", "product", "name", "date_added", "due_date", "ransomware", "catalog_version", "loaded_at"}
	epssColumns     = []string{"cve", "epss", "percentile", "score_date", "model_version", "loaded_at"}
	feedLoadColumns = []string{"source", "location", "started_at", "finished_at", "records", "loaded", "updated", "unchanged", "withdrawn", "skipped", "newest_modified", "error"}
)
