package policy

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patchgrid/patchgrid/schemas/severity"
)

// decoder walks the YAML node tree by hand rather than decoding into
// structs: that way every error carries the line and the field path, and
// unknown keys are refused (a misspelt "blast_raduis" must not silently
// mean "no cap"). The first error wins; later calls are no-ops.
type decoder struct {
	file string
	err  error
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	if d.err != nil {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.err = &Error{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// fields iterates a mapping's keys, refusing keys not in allowed and keys
// given twice, and calls f with each value.
func (d *decoder) fields(n *yaml.Node, field string, allowed []string, f func(key string, v *yaml.Node, kf string)) {
	if d.err != nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, field, "want a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content) && d.err == nil; i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kf := k.Value
		if field != "" {
			kf = field + "." + k.Value
		}
		if !contains(allowed, k.Value) {
			d.fail(k, kf, "unknown field (want one of %s)", strings.Join(allowed, ", "))
			return
		}
		if seen[k.Value] {
			d.fail(k, kf, "given twice")
			return
		}
		seen[k.Value] = true
		f(k.Value, v, kf)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) seq(n *yaml.Node, field string, f func(i int, v *yaml.Node, ef string)) {
	if d.err != nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, field, "want a list")
		return
	}
	for i, v := range n.Content {
		if d.err != nil {
			return
		}
		f(i, v, fmt.Sprintf("%s[%d]", field, i))
	}
}

func (d *decoder) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.fail(n, field, "want a string")
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (d *decoder) strs(n *yaml.Node, field string) []string {
	var out []string
	d.seq(n, field, func(_ int, v *yaml.Node, ef string) {
		if s := d.str(v, ef); s != "" {
			out = append(out, s)
		} else {
			d.fail(v, ef, "empty")
		}
	})
	return out
}

func (d *decoder) boolean(n *yaml.Node, field string) bool {
	b, err := strconv.ParseBool(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		d.fail(n, field, "want true or false")
	}
	return b
}

func (d *decoder) number(n *yaml.Node, field string, lo, hi float64) float64 {
	f, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) {
		d.fail(n, field, "want a number")
		return 0
	}
	if f < lo || f > hi {
		d.fail(n, field, "%v out of range %v..%v", f, lo, hi)
	}
	return f
}

func (d *decoder) uint(n *yaml.Node, field string, lo, hi uint64) uint64 {
	v, err := strconv.ParseUint(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		d.fail(n, field, "want a whole number")
		return 0
	}
	if v < lo || v > hi {
		d.fail(n, field, "%d out of range %d..%d", v, lo, hi)
	}
	return v
}

func (d *decoder) duration(n *yaml.Node, field string) Duration {
	v, err := ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		d.fail(n, field, "want a duration such as 4h, 90m, 2d or 1w")
	}
	return Duration(v)
}

func (d *decoder) location(n *yaml.Node, field string) (string, *time.Location) {
	name := d.str(n, field)
	if d.err != nil {
		return "", nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" || name == "Local" {
		d.fail(n, field, "unknown IANA time zone %q (e.g. UTC, Europe/Berlin)", name)
		return "", nil
	}
	return name, loc
}

func (d *decoder) policy(n *yaml.Node) *Policy {
	p := &Policy{Name: "default"}
	if n.Kind == 0 {
		d.fail(n, "policy", "empty file")
		return nil
	}
	var slaNode *yaml.Node
	var freezeNodes []*yaml.Node
	d.fields(n, "", []string{"name", "sla", "groups", "freezes", "rings", "blast_radius", "emergency", "exceptions", "deployment"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "name":
			p.Name = d.str(v, kf)
		case "sla":
			slaNode = v
			p.SLA = d.sla(v, kf)
		case "groups":
			names := map[string]bool{}
			d.seq(v, kf, func(_ int, g *yaml.Node, ef string) {
				gr := d.group(g, ef)
				if d.err == nil && names[gr.Name] {
					d.fail(g, ef+".name", "group %q defined twice", gr.Name)
				}
				names[gr.Name] = true
				p.Groups = append(p.Groups, gr)
			})
		case "freezes":
			d.seq(v, kf, func(_ int, f *yaml.Node, ef string) {
				p.Freezes = append(p.Freezes, d.freeze(f, ef))
				freezeNodes = append(freezeNodes, f)
			})
		case "rings":
			names := map[string]bool{}
			d.seq(v, kf, func(_ int, r *yaml.Node, ef string) {
				ring := d.ring(r, ef)
				if d.err == nil && names[ring.Name] {
					d.fail(r, ef+".name", "ring %q listed twice", ring.Name)
				}
				names[ring.Name] = true
				p.Rings = append(p.Rings, ring)
			})
		case "blast_radius":
			p.BlastRadius = d.blast(v, kf)
		case "emergency":
			p.Emergency = d.emergency(v, kf)
		case "deployment": // verification window and retries (issue 13)
			d.fields(v, kf, []string{"verification_window", "max_attempts"}, func(k string, v *yaml.Node, ef string) {
				if k == "max_attempts" {
					p.Deployment.MaxAttempts = uint32(d.uint(v, ef, 1, 100))
				} else if p.Deployment.VerificationWindow = d.duration(v, ef); d.err == nil && p.Deployment.VerificationWindow <= 0 {
					d.fail(v, ef, "must be more than zero")
				}
			})
		case "exceptions": // exception cap (issue 14)
			d.fields(v, kf, []string{"max_duration"}, func(_ string, v *yaml.Node, ef string) {
				if p.Exceptions.MaxDuration = d.duration(v, ef); d.err == nil && p.Exceptions.MaxDuration <= 0 {
					d.fail(v, ef, "must be more than zero")
				}
			})
		}
	})
	if d.err != nil {
		return nil
	}
	if slaNode == nil {
		d.fail(n, "sla", "missing: a policy states its SLA days per severity")
		return nil
	}
	// Freezes name groups: check they exist (a typo would freeze nothing).
	for i, f := range p.Freezes {
		for _, g := range f.Groups {
			if !p.hasGroup(g) {
				d.fail(freezeNodes[i], fmt.Sprintf("freezes[%d].groups", i), "unknown group %q", g)
				return nil
			}
		}
	}
	return p
}

func (p *Policy) hasGroup(name string) bool {
	for _, g := range p.Groups {
		if g.Name == name {
			return true
		}
	}
	return false
}

func (d *decoder) sla(n *yaml.Node, field string) SLA {
	s := SLA{Days: map[string]uint32{}}
	var daysNode *yaml.Node
	d.fields(n, field, []string{"days", "kev_due_date", "epss_escalation"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "days":
			daysNode = v
			d.fields(v, kf, severity.All, func(sev string, dv *yaml.Node, sf string) {
				s.Days[sev] = uint32(d.uint(dv, sf, 1, 3650))
			})
		case "kev_due_date":
			s.KEVDueDate = d.boolean(v, kf)
		case "epss_escalation":
			e := &EPSSEscalation{}
			var has [2]bool
			d.fields(v, kf, []string{"threshold", "days"}, func(k string, v *yaml.Node, ef string) {
				if k == "threshold" {
					e.Threshold, has[0] = d.number(v, ef, 0, 1), true
				} else {
					e.Days, has[1] = uint32(d.uint(v, ef, 1, 3650)), true
				}
			})
			if d.err == nil && !(has[0] && has[1]) {
				d.fail(v, kf, "needs threshold and days")
			}
			s.EPSSEscalation = e
		}
	})
	if d.err != nil {
		return s
	}
	if daysNode == nil {
		d.fail(n, field+".days", "missing: days per severity (critical, high, medium, low)")
		return s
	}
	for _, sev := range []string{"critical", "high", "medium", "low"} {
		if _, ok := s.Days[sev]; !ok {
			d.fail(daysNode, field+".days."+sev, "missing")
			return s
		}
	}
	// Advisories without a rating: none defaults to a year, unknown to
	// medium (an unrated advisory is not assumed harmless).
	if _, ok := s.Days["none"]; !ok {
		s.Days["none"] = defaultSLADays["none"]
	}
	if _, ok := s.Days["unknown"]; !ok {
		s.Days["unknown"] = s.Days["medium"]
	}
	return s
}

func (d *decoder) selector(n *yaml.Node, field string) Selector {
	var s Selector
	d.fields(n, field, []string{"ring", "owner", "os", "criticality", "internet_facing", "hostname", "tags"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "ring":
			s.Ring = d.str(v, kf)
		case "owner":
			s.Owner = d.str(v, kf)
		case "os":
			s.OS = d.str(v, kf)
		case "criticality":
			c := int(d.uint(v, kf, 0, 4))
			s.Criticality = &c
		case "internet_facing":
			b := d.boolean(v, kf)
			s.InternetFacing = &b
		case "hostname":
			s.Hostname = d.str(v, kf)
			if _, err := path.Match(s.Hostname, ""); err != nil {
				d.fail(v, kf, "bad glob %q: %v", s.Hostname, err)
			}
		case "tags":
			s.Tags = d.strs(v, kf)
		}
	})
	return s
}

func (d *decoder) group(n *yaml.Node, field string) Group {
	var g Group
	var hasSelect bool
	d.fields(n, field, []string{"name", "select", "windows", "blast_radius"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "name":
			g.Name = d.str(v, kf)
		case "select":
			g.Select, hasSelect = d.selector(v, kf), true
		case "windows":
			d.seq(v, kf, func(_ int, w *yaml.Node, ef string) { g.Windows = append(g.Windows, d.window(w, ef)) })
		case "blast_radius":
			b := d.blast(v, kf)
			g.BlastRadius = &b
		}
	})
	if d.err == nil && g.Name == "" {
		d.fail(n, field+".name", "missing")
	}
	if d.err == nil && !hasSelect {
		d.fail(n, field+".select", "missing: which hosts belong to the group (label selectors)")
	}
	return g
}

var weekdayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (d *decoder) window(n *yaml.Node, field string) Window {
	var w Window
	w.TimeZone, w.loc = "UTC", time.UTC
	var has struct{ days, start, dur bool }
	d.fields(n, field, []string{"days", "start", "duration", "timezone"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "days":
			has.days = true
			d.seq(v, kf, func(_ int, dv *yaml.Node, ef string) {
				name := strings.ToLower(d.str(dv, ef))
				wd, ok := weekdayNames[name]
				if d.err == nil && !ok {
					d.fail(dv, ef, "unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", name)
				}
				w.weekdays[wd] = true
				w.Days = append(w.Days, name)
			})
			if d.err == nil && len(w.Days) == 0 {
				d.fail(v, kf, "no days")
			}
		case "start":
			has.start = true
			w.Start = d.str(v, kf)
			t, err := time.Parse("15:04", w.Start)
			if d.err == nil && err != nil {
				d.fail(v, kf, "want HH:MM (24-hour wall clock), got %q", w.Start)
			}
			w.hour, w.minute = t.Hour(), t.Minute()
		case "duration":
			has.dur = true
			w.Duration = d.duration(v, kf)
			if d.err == nil && (w.Duration <= 0 || time.Duration(w.Duration) > 7*24*time.Hour) {
				d.fail(v, kf, "want more than 0 and at most a week")
			}
		case "timezone":
			w.TimeZone, w.loc = d.location(v, kf)
		}
	})
	if d.err == nil && !(has.days && has.start && has.dur) {
		d.fail(n, field, "a window needs days, start and duration (timezone defaults to UTC)")
	}
	return w
}

func (d *decoder) freeze(n *yaml.Node, field string) Freeze {
	f := Freeze{TimeZone: "UTC"}
	loc := time.UTC
	var fromNode, toNode *yaml.Node
	d.fields(n, field, []string{"name", "from", "to", "timezone", "groups"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "name":
			f.Name = d.str(v, kf)
		case "from":
			f.From, fromNode = d.str(v, kf), v
		case "to":
			f.To, toNode = d.str(v, kf), v
		case "timezone":
			f.TimeZone, loc = d.location(v, kf)
		case "groups":
			f.Groups = d.strs(v, kf)
		}
	})
	if d.err != nil {
		return f
	}
	if fromNode == nil || toNode == nil {
		d.fail(n, field, "a freeze needs from and to (YYYY-MM-DD, to inclusive)")
		return f
	}
	from, err := time.ParseInLocation(time.DateOnly, f.From, loc)
	if err != nil {
		d.fail(fromNode, field+".from", "want YYYY-MM-DD, got %q", f.From)
		return f
	}
	to, err := time.ParseInLocation(time.DateOnly, f.To, loc)
	if err != nil {
		d.fail(toNode, field+".to", "want YYYY-MM-DD, got %q", f.To)
		return f
	}
	if to.Before(from) {
		d.fail(toNode, field+".to", "%s is before from %s", f.To, f.From)
		return f
	}
	f.start, f.end = from, to.AddDate(0, 0, 1)
	return f
}

func (d *decoder) ring(n *yaml.Node, field string) Ring {
	var r Ring
	r.Gate.MaxFailureRate = 1
	d.fields(n, field, []string{"name", "gate"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "name":
			r.Name = d.str(v, kf)
		case "gate":
			d.fields(v, kf, []string{"min_soak", "max_failure_rate", "min_successes"}, func(k string, v *yaml.Node, gf string) {
				switch k {
				case "min_soak":
					r.Gate.MinSoak = d.duration(v, gf)
				case "max_failure_rate":
					r.Gate.MaxFailureRate = d.number(v, gf, 0, 1)
				case "min_successes":
					r.Gate.MinSuccesses = uint32(d.uint(v, gf, 0, math.MaxUint32))
				}
			})
		}
	})
	if d.err == nil && r.Name == "" {
		d.fail(n, field+".name", "missing")
	}
	return r
}

func (d *decoder) blast(n *yaml.Node, field string) BlastRadius {
	var b BlastRadius
	d.fields(n, field, []string{"percent", "hosts"}, func(k string, v *yaml.Node, kf string) {
		if k == "percent" {
			b.Percent = d.number(v, kf, 0.001, 100)
		} else {
			b.Hosts = uint32(d.uint(v, kf, 1, math.MaxUint32))
		}
	})
	if d.err == nil && b == (BlastRadius{}) {
		d.fail(n, field, "needs percent and/or hosts")
	}
	return b
}

func (d *decoder) emergency(n *yaml.Node, field string) Emergency {
	var e Emergency
	d.fields(n, field, []string{"when", "bypass", "window", "approval_required"}, func(k string, v *yaml.Node, kf string) {
		switch k {
		case "when":
			d.fields(v, kf, []string{"kev", "critical_epss", "internet_facing"}, func(k string, v *yaml.Node, wf string) {
				switch k {
				case "kev":
					e.KEV = d.boolean(v, wf)
				case "critical_epss":
					x := d.number(v, wf, 0, 1)
					e.CriticalEPSS = &x
				case "internet_facing":
					e.InternetFacing = d.boolean(v, wf)
				}
			})
		case "bypass":
			d.seq(v, kf, func(_ int, bv *yaml.Node, ef string) {
				b := d.str(bv, ef)
				if d.err == nil && !contains([]string{BypassWindows, BypassFreezes, BypassSoak}, b) {
					d.fail(bv, ef, "unknown bypass %q (want windows, freezes or soak)", b)
				}
				if !contains(e.Bypass, b) {
					e.Bypass = append(e.Bypass, b)
				}
			})
		case "window":
			e.Window = d.duration(v, kf)
			if d.err == nil && e.Window <= 0 {
				d.fail(v, kf, "want more than 0")
			}
		case "approval_required":
			e.ApprovalRequired = d.boolean(v, kf)
		}
	})
	return e
}
