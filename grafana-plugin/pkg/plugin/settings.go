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
	// CHDBLib is the path of libchdb.so. Default: patchgrid's cache
	// location (store.DefaultCHDBLib).
	CHDBLib string `json:"chdbLib"`
	// Addr is host:port of a ClickHouse server's native protocol.
	Addr string `json:"addr"`
	// Database defaults to "patchgrid", User to "default".
	Database string `json:"database"`
	User     string `json:"user"`
	// DialTimeoutSeconds bounds connecting to a server. Default 10.
	DialTimeoutSeconds int `json:"dialTimeoutSeconds"`

	Password string `json:"-"`
}

// LoadSettings reads and checks s's jsonData and secureJsonData.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var out Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &out); err != nil {
			return out, fmt.Errorf("data source %q settings (jsonData): %w", s.Name, err)
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
