package plugin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Settings is one data source's configuration: jsonData of the data source
// plus the password from secureJsonData (Grafana stores that encrypted and
// never sends it back to the browser).
type Settings struct {
	// Backend is "chdb" (embedded, the default) or "clickhouse".
	Backend string `json:"backend"`
	// DataDir is the chDB data directory. chDB lets one process hold a
	// directory, so while Grafana runs the plugin no other patchgrid process
	// can open it (see README.md).
	DataDir string `json:"dataDir"`
	// CHDBLib is the path of libchdb.so. It is never read from jsonData:
	// whoever may edit a data source could otherwise make the plugin dlopen
	// any shared library. It comes from the plugin process's environment,
	// which only Grafana's administrator sets (CHDBLibFromEnv).
	CHDBLib string `json:"-"`
	// IgnoredCHDBLib is a chdbLib found in jsonData (older provisioning
	// files wrote one): ignored, and reported by the health check.
	IgnoredCHDBLib string `json:"-"`
	// Addr is host:port of a ClickHouse server's native protocol.
	Addr string `json:"addr"`
	// Database defaults to "patchgrid", User to "default".
	Database string `json:"database"`
	User     string `json:"user"`
	// DialTimeoutSeconds bounds connecting to a server. Default 10.
	DialTimeoutSeconds int `json:"dialTimeoutSeconds"`

	Password string `json:"-"`
}

// Environment variables the plugin reads libchdb.so's path from, first
// set wins. GF_PLUGIN_CHDB_LIB is what Grafana makes of grafana.ini's
// [plugin.patchgrid-datasource] chdb_lib; PATCHGRID_CHDB_LIB is the CLI's
// variable, set in Grafana's own environment (Grafana passes its
// environment to plugin processes).
var chdbLibEnv = []string{"GF_PLUGIN_CHDB_LIB", "PATCHGRID_CHDB_LIB"}

// CHDBLibFromEnv is the libchdb.so path the administrator configured in the
// plugin's environment, else patchgrid's cache location
// (store.DefaultCHDBLib).
func CHDBLibFromEnv(getenv func(string) string) string {
	for _, k := range chdbLibEnv {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return store.DefaultCHDBLib(getenv)
}

// LoadSettings reads and checks s's jsonData and secureJsonData; chdbLib is
// the administrator's libchdb.so path (CHDBLibFromEnv), never jsonData's.
func LoadSettings(s backend.DataSourceInstanceSettings, chdbLib string) (Settings, error) {
	out := Settings{CHDBLib: chdbLib}
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &out); err != nil {
			return out, fmt.Errorf("data source %q settings (jsonData): %w", s.Name, err)
		}
		var legacy struct {
			CHDBLib string `json:"chdbLib"`
		}
		if json.Unmarshal(s.JSONData, &legacy) == nil {
			out.IgnoredCHDBLib = legacy.CHDBLib
		}
	}
	out.Password = s.DecryptedSecureJSONData["password"]
	if out.Backend == "" {
		out.Backend = "chdb"
	}
	switch out.Backend {
	case "chdb":
		if out.DataDir == "" {
			return out, fmt.Errorf("data source %q: the chdb backend needs a data directory (dataDir)", s.Name)
		}
	case "clickhouse":
		if out.Addr == "" {
			return out, fmt.Errorf("data source %q: the clickhouse backend needs a server address host:port (addr)", s.Name)
		}
	default:
		return out, fmt.Errorf("data source %q: unknown backend %q (want chdb or clickhouse)", s.Name, out.Backend)
	}
	if out.DialTimeoutSeconds < 0 {
		return out, fmt.Errorf("data source %q: dialTimeoutSeconds %d is negative", s.Name, out.DialTimeoutSeconds)
	}
	return out, nil
}

// StoreConfig is the store.Config the settings select.
func (s Settings) StoreConfig() store.Config {
	return store.Config{
		Backend:     s.Backend,
		DataDir:     s.DataDir,
		CHDBLib:     s.CHDBLib,
		Addr:        s.Addr,
		Database:    s.Database,
		User:        s.User,
		Password:    s.Password,
		DialTimeout: time.Duration(s.DialTimeoutSeconds) * time.Second,
	}
}
