package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

type dashboard struct {
	Templating struct {
		List []struct {
			Name    string `json:"name"`
			Current struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string            `json:"title"`
		Type       string            `json:"type"`
		Datasource map[string]string `json:"datasource"`
		Targets    []map[string]any  `json:"targets"`
		Options    struct {
			XField        string `json:"xField"`
			ReduceOptions struct {
				Fields string `json:"fields"`
			} `json:"reduceOptions"`
		} `json:"options"`
		Transformations []struct {
			ID      string          `json:"id"`
			Options json.RawMessage `json:"options"`
		} `json:"transformations"`
	} `json:"panels"`
}

var fieldRegexp = regexp.MustCompile(`^/\^([a-z_]+)\$/$`)

// TestDashboards runs every query of the provisioned dashboards (template
// variables at their defaults) against the known fleet, and checks that
// each field a panel names (x axis, reduced field, group-by, filter and
// organize keys) exists in the frame: a renamed KPI column would otherwise
// leave an empty panel and no error.
func TestDashboards(t *testing.T) {
	files, err := filepath.Glob("../../provisioning/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	d := NewWithStore(st, quiet)
	tr := backend.TimeRange{From: fleet.Day(90), To: fleet.Now}

	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash dashboard
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		vars := map[string]string{}
		for _, v := range dash.Templating.List {
			switch x := v.Current.Value.(type) {
			case string:
				vars[v.Name] = x
			case []any:
				var parts []string
				for _, p := range x {
					parts = append(parts, p.(string))
				}
				vars[v.Name] = strings.Join(parts, ",") // the data source's csv format
			}
		}
		for _, p := range dash.Panels {
			if p.Type == "row" {
				continue
			}
			t.Run(filepath.Base(file)+"/"+p.Title, func(t *testing.T) {
				if p.Datasource["type"] != ID {
					t.Errorf("panel data source %v", p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Fatal("no queries")
				}
				for _, target := range p.Targets {
					for k, v := range target {
						if s, ok := v.(string); ok && strings.HasPrefix(s, "$") {
							target[k] = vars[strings.TrimPrefix(s, "$")]
						}
					}
					model, _ := json.Marshal(target)
					r := queryOne(t, d, string(model), tr)
					f := frameOf(t, r)
					if f.Meta.Type == "timeseries-wide" {
						continue
					}
					var names []string
					names = append(names, p.Options.XField)
					if m := fieldRegexp.FindStringSubmatch(p.Options.ReduceOptions.Fields); m != nil {
						names = append(names, m[1])
					}
					for _, tf := range p.Transformations {
						var opts struct {
							Fields        map[string]any  `json:"fields"`
							ExcludeByName map[string]bool `json:"excludeByName"`
							Filters       []struct {
								FieldName string `json:"fieldName"`
							} `json:"filters"`
						}
						if err := json.Unmarshal(tf.Options, &opts); err != nil {
							t.Fatalf("transformation %s: %v", tf.ID, err)
						}
						for n := range opts.Fields {
							names = append(names, n)
						}
						for n := range opts.ExcludeByName {
							names = append(names, n)
						}
						for _, fl := range opts.Filters {
							names = append(names, fl.FieldName)
						}
					}
					for _, n := range names {
						if n != "" && fieldIndex(f, n) < 0 {
							t.Errorf("panel names field %q; the %s frame has none", n, f.Name)
						}
					}
				}
			})
		}
	}
}
