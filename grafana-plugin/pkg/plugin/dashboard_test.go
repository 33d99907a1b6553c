package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/risk"
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

// dashboardGlob finds the shipped dashboards (copied to dist/dashboards).
const dashboardGlob = "../../src/dashboards/*.json"

var fieldRegexp = regexp.MustCompile(`^/\^([a-z_]+)\$/$`)

// TestDashboards runs every query of the provisioned dashboards (template
// variables at their defaults) against the known fleet, and checks that
// each field a panel names (x axis, reduced field, group-by, filter and
// organize keys) exists in the frame: a renamed KPI column would otherwise
// leave an empty panel and no error.
func TestDashboards(t *testing.T) {
	files, err := filepath.Glob(dashboardGlob)
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
				if x == "$__all" {
					x = "" // "All": the dashboards' allValue, no filter
				}
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

// TestDashboardsImportable: every shipped dashboard can be imported through
// Grafana's UI as well as provisioned. It declares the data source it needs
// in __inputs, selects it with a data source variable, and every panel,
// query and query variable reads that variable (no hard-coded uid). Each
// is listed in plugin.json "includes"; query variables name a field the
// /values resource lists.
func TestDashboardsImportable(t *testing.T) {
	files, err := filepath.Glob(dashboardGlob)
	if err != nil || len(files) < 2 {
		t.Fatalf("dashboards %v: %v", files, err)
	}
	var manifest struct {
		Includes []struct {
			Type, Name, Path string
		} `json:"includes"`
	}
	raw, err := os.ReadFile("../../src/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	included := map[string]bool{}
	for _, inc := range manifest.Includes {
		if inc.Type == "dashboard" {
			included[inc.Path] = true
		}
	}
	const dsRef = "${datasource}"
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if !included["dashboards/"+filepath.Base(file)] {
				t.Errorf("not in plugin.json includes %v", included)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				Inputs []struct {
					Name, Type, PluginID string
				} `json:"__inputs"`
				UID        string `json:"uid"`
				Templating struct {
					List []struct {
						Name, Type string
						Query      any               `json:"query"`
						Datasource map[string]string `json:"datasource"`
						Current    struct {
							Value any `json:"value"`
						} `json:"current"`
					} `json:"list"`
				} `json:"templating"`
				Panels []struct {
					Title      string            `json:"title"`
					Type       string            `json:"type"`
					Datasource map[string]string `json:"datasource"`
					Targets    []map[string]any  `json:"targets"`
				} `json:"panels"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != ID {
				t.Fatalf("__inputs %+v: want one datasource input for %s", d.Inputs, ID)
			}
			if !strings.HasPrefix(d.UID, "patchgrid-") {
				t.Errorf("uid %q", d.UID)
			}
			vars := 0
			for _, v := range d.Templating.List {
				switch v.Type {
				case "datasource":
					vars++
					if v.Name != "datasource" || v.Query != ID || v.Current.Value != "${"+d.Inputs[0].Name+"}" {
						t.Errorf("data source variable %+v", v)
					}
				case "query":
					if v.Datasource["uid"] != dsRef || v.Datasource["type"] != ID {
						t.Errorf("variable %s reads %v", v.Name, v.Datasource)
					}
					q, _ := v.Query.(string)
					if !slices.Contains(risk.ValueFields, strings.Fields(q + " x")[0]) {
						t.Errorf("variable %s: query %q names no field of /values", v.Name, q)
					}
				}
			}
			if vars != 1 {
				t.Errorf("%d data source variables, want 1", vars)
			}
			for _, p := range d.Panels {
				if p.Type == "row" {
					continue
				}
				if p.Datasource["uid"] != dsRef {
					t.Errorf("panel %q reads data source %v, want uid %s", p.Title, p.Datasource, dsRef)
				}
				for _, tg := range p.Targets {
					if ds, _ := tg["datasource"].(map[string]any); ds["uid"] != dsRef {
						t.Errorf("panel %q query %v reads %v", p.Title, tg["refId"], tg["datasource"])
					}
				}
			}
			if bytes.Contains(raw, []byte(`"uid": "patchgrid"`)) {
				t.Error("a hard-coded data source uid is left")
			}
		})
	}
}

// TestProvisioning: the data source is not provisioned as the default and
// takes no library path; the example alert rule's query runs and yields the
// one number its expressions reduce and compare.
func TestProvisioning(t *testing.T) {
	raw, err := os.ReadFile("../../provisioning/datasources/patchgrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []map[string]any `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %v %v", ds, err)
	}
	if _, ok := ds.Datasources[0]["isDefault"]; ok {
		t.Error("the provisioned data source must not set isDefault")
	}
	if jd, _ := ds.Datasources[0]["jsonData"].(map[string]any); jd["chdbLib"] != nil {
		t.Error("provisioning must not put chdbLib in jsonData")
	}

	raw, err = os.ReadFile("../../provisioning/alerting/patchgrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var al struct {
		Groups []struct {
			Rules []struct {
				UID, Title, Condition string
				Data                  []struct {
					RefID         string         `yaml:"refId"`
					DatasourceUID string         `yaml:"datasourceUid"`
					Model         map[string]any `yaml:"model"`
				} `yaml:"data"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &al); err != nil || len(al.Groups) != 1 || len(al.Groups[0].Rules) != 1 {
		t.Fatalf("alert rules: %+v %v", al, err)
	}
	rule := al.Groups[0].Rules[0]
	refs := map[string]bool{}
	var model []byte
	for _, q := range rule.Data {
		refs[q.RefID] = true
		switch q.DatasourceUID {
		case "patchgrid":
			model, _ = json.Marshal(q.Model)
		case "__expr__":
			if e, _ := q.Model["expression"].(string); !refs[e] {
				t.Errorf("expression %s reads %q, not an earlier query", q.RefID, e)
			}
		default:
			t.Errorf("query %s reads data source %q", q.RefID, q.DatasourceUID)
		}
	}
	if !refs[rule.Condition] || model == nil {
		t.Fatalf("rule %s: condition %q, patchgrid query %s", rule.UID, rule.Condition, model)
	}

	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	d := NewWithStore(st, quiet)
	f := frameOf(t, queryOne(t, d, string(model), backend.TimeRange{From: fleet.Day(1), To: fleet.Now}))
	if f.Rows() != 1 || len(f.Fields) != 1 {
		t.Fatalf("alert query frame: %d rows, %d fields", f.Rows(), len(f.Fields))
	}
	v, _ := f.Fields[0].ConcreteAt(0)
	got, _ := v.(int64)
	want, err := risk.CountFindings(context.Background(), st, kevOnly(t), "overdue")
	if err != nil || got != int64(want) {
		t.Fatalf("alert query counts %d, risk.CountFindings %d (%v)", got, want, err)
	}
	t.Logf("overdue KEV exposures in the kpitest fleet: %d", got)
}

func kevOnly(t *testing.T) risk.Filter {
	f, err := risk.ParseFilter(func(n string) string {
		if n == "kev" {
			return "true"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
