// Command gpx_patchgrid is the backend of patchgrid's Grafana data source.
// Grafana starts it (plugin.json: "executable": "gpx_patchgrid") and talks
// to it over gRPC; see ../README.md.
package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"

	"github.com/patchgrid/patchgrid/grafana-plugin/pkg/plugin"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{ReplaceAttr: hclogAttr}))
	// The libchdb.so path comes from the process environment, which only
	// Grafana's administrator controls, never from a data source's settings.
	instances := plugin.NewInstances(log, plugin.CHDBLibFromEnv(os.Getenv))
	err := datasource.Manage(plugin.ID, instances.New, datasource.ManageOpts{})
	// Manage returns when Grafana stops the plugin; chDB must be closed
	// before the process exits.
	instances.Close()
	if err != nil {
		log.Error("plugin stopped", "err", err)
		os.Exit(1)
	}
}

// hclogAttr renames slog's JSON keys to hclog's (@level, @message,
// @timestamp): Grafana reads plugin logs from stderr with go-plugin, which
// parses that shape and files each line under its level.
func hclogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		return slog.String("@level", strings.ToLower(a.Value.String()))
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	case slog.TimeKey:
		return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
	}
	return a
}
