package mastosim

import (
	"net/url"
	"slices"
	"testing"
)

type measure struct {
	Key   string  `json:"key"`
	Unit  *string `json:"unit"`
	Total string  `json:"total"`
	Data  []struct {
		Date  string `json:"date"`
		Value string `json:"value"`
	} `json:"data"`
}

func TestMeasures(t *testing.T) {
	s, _ := newSim(t, Options{})
	s.SetFollows("bad.example", 12, 3)
	s.SetFollows("Sub.Bad.Example", 5, 1)
	s.SetFollows("notbad.example", 100, 100)
	s.AddAccount(Account{Username: "x", Domain: "bad.example"})
	s.AddAccount(Account{Username: "y", Domain: "sub.bad.example"})

	body := func(sub any) map[string]any {
		p := map[string]any{"domain": "bad.example"}
		if sub != nil {
			p["include_subdomains"] = sub
		}
		return map[string]any{
			"keys":     []string{"instance_follows", "instance_followers", "instance_accounts", "new_users", "bogus"},
			"start_at": "2026-08-01", "end_at": "2026-08-21",
			"instance_follows": p, "instance_followers": p, "instance_accounts": p,
		}
	}
	tests := []struct {
		name                      string
		sub                       any
		follows, followers, accts string
	}{
		{"exact domain", nil, "12", "3", "1"},
		{"include_subdomains true", true, "17", "4", "2"},
		{"include_subdomains string false is present", "false", "17", "4", "2"},
		{"include_subdomains JSON false", false, "12", "3", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, s, "POST", "/api/v1/admin/measures", adminTok, body(tt.sub))
			wantStatus(t, w, 200)
			got := decode[[]measure](t, w)
			if len(got) != 3 {
				t.Fatalf("got %d measures: %+v", len(got), got)
			}
			want := map[string]string{"instance_follows": tt.follows, "instance_followers": tt.followers, "instance_accounts": tt.accts}
			for _, m := range got {
				if m.Total != want[m.Key] || m.Unit != nil {
					t.Errorf("%s total = %q, want %q", m.Key, m.Total, want[m.Key])
				}
				if len(m.Data) != 21 || m.Data[0].Date != "2026-08-01" || m.Data[20].Date != "2026-08-21" || m.Data[0].Value != "0" {
					t.Errorf("%s data = %+v", m.Key, m.Data)
				}
			}
		})
	}

	// Form-encoded nested parameters work too.
	form := url.Values{
		"keys[]": {"instance_follows"}, "start_at": {"2026-08-20"}, "end_at": {"2026-08-21"},
		"instance_follows[domain]": {"bad.example"}, "instance_follows[include_subdomains]": {"1"},
	}
	w := do(t, s, "POST", "/api/v1/admin/measures", adminTok, form)
	wantStatus(t, w, 200)
	if got := decode[[]measure](t, w); len(got) != 1 || got[0].Total != "17" || len(got[0].Data) != 2 {
		t.Fatalf("form measures = %+v", got)
	}
}

func TestMeasuresErrors(t *testing.T) {
	s, _ := newSim(t, Options{Version: "4.6.4"}) // dates are params.require'd in 4.6.4 and 4.6.5
	base := func() map[string]any {
		return map[string]any{
			"keys": []string{"instance_follows"}, "start_at": "2026-08-01", "end_at": "2026-08-21",
			"instance_follows": map[string]any{"domain": "bad.example"},
		}
	}
	tests := []struct {
		name   string
		edit   func(map[string]any)
		status int
		msg    string
	}{
		{"missing start_at", func(m map[string]any) { delete(m, "start_at") }, 400, "param is missing or the value is empty: start_at"},
		{"blank end_at", func(m map[string]any) { m["end_at"] = "" }, 400, "param is missing or the value is empty: end_at"},
		{"missing instance_follows", func(m map[string]any) { delete(m, "instance_follows") }, 400, "param is missing or the value is empty: instance_follows"},
		{"missing domain", func(m map[string]any) { m["instance_follows"] = map[string]any{"include_subdomains": true} }, 400, "param is missing or the value is empty: instance_follows"},
		{"bad date", func(m map[string]any) { m["start_at"] = "yesterday-ish" }, 422, "Invalid date supplied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base()
			tt.edit(b)
			wantError(t, do(t, s, "POST", "/api/v1/admin/measures", adminTok, b), tt.status, tt.msg)
		})
	}
	// Unknown keys only: an empty list.
	b := base()
	b["keys"] = []string{"nope"}
	w := do(t, s, "POST", "/api/v1/admin/measures", adminTok, b)
	wantStatus(t, w, 200)
	if w.Body.String() != "[]" {
		t.Fatalf("body = %s", w.Body.String())
	}

	off, _ := newSim(t, Options{DisableMeasures: true})
	wantError(t, do(t, off, "POST", "/api/v1/admin/measures", adminTok, base()), 404, "Record not found")
}

// TestMeasuresWithoutDatesFollowVersion: 4.3.0's app/controllers/api/v1/admin/measures_controller.rb
// passes params[:start_at] and params[:end_at] through, BaseMeasure#initialize keeps nil (and
// String#to_datetime gives nil for a blank string), and generate_series over NULL is empty: 200
// with the all-time totals and empty data. Only 4.6.4 and 4.6.5 params.require them (400).
func TestMeasuresWithoutDatesFollowVersion(t *testing.T) {
	tests := []struct {
		version, name string
		edit          func(map[string]any)
		status        int
	}{
		{"4.2.10", "no dates", func(m map[string]any) { delete(m, "start_at"); delete(m, "end_at") }, 200},
		{"4.3.0", "no dates", func(m map[string]any) { delete(m, "start_at"); delete(m, "end_at") }, 200},
		{"4.3.0", "no end_at", func(m map[string]any) { delete(m, "end_at") }, 200},
		{"4.3.0", "blank and null", func(m map[string]any) { m["start_at"], m["end_at"] = "", nil }, 200},
		{"4.6.3", "no dates", func(m map[string]any) { delete(m, "start_at"); delete(m, "end_at") }, 200},
		{"4.6.4", "no dates", func(m map[string]any) { delete(m, "start_at"); delete(m, "end_at") }, 400},
		{"4.6.5", "no end_at", func(m map[string]any) { delete(m, "end_at") }, 400},
		{"4.6.6", "no dates", func(m map[string]any) { delete(m, "start_at"); delete(m, "end_at") }, 200},
		{"4.7.0", "no start_at", func(m map[string]any) { delete(m, "start_at") }, 200},
	}
	for _, tt := range tests {
		b := map[string]any{
			"keys": []string{"instance_follows"}, "start_at": "2026-08-01", "end_at": "2026-08-21",
			"instance_follows": map[string]any{"domain": "bad.example"},
		}
		tt.edit(b)
		t.Run(tt.version+" "+tt.name, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version})
			s.SetFollows("bad.example", 7, 2)
			w := do(t, s, "POST", "/api/v1/admin/measures", adminTok, b)
			if tt.status == 400 {
				wantStatus(t, w, 400)
				return
			}
			wantStatus(t, w, 200)
			if got := decode[[]measure](t, w); len(got) != 1 || got[0].Total != "7" || got[0].Data == nil || len(got[0].Data) != 0 {
				t.Fatalf("dateless measures = %s", w.Body.String())
			}
		})
	}
	// A date that is given must still parse, whatever the version (Date::Error → 422).
	s, _ := newSim(t, Options{})
	wantError(t, do(t, s, "POST", "/api/v1/admin/measures", adminTok, map[string]any{
		"keys": []string{"instance_follows"}, "start_at": "soon", "instance_follows": map[string]any{"domain": "bad.example"},
	}), 422, "Invalid date supplied")
}

// TestMeasuresDateFormatFollowsVersion: from 4.3.0 the series is cast to ::date
// (app/lib/admin/metrics/measure/query_helper.rb#generated_series_days, #29928), so the data
// dates are plain dates; before, they were timestamps.
func TestMeasuresDateFormatFollowsVersion(t *testing.T) {
	tests := []struct {
		version, start, end string
		want                []string
	}{
		{"4.2.10", "2026-02-25", "2026-02-26T13:00:00Z", []string{"2026-02-25T00:00:00.000+00:00", "2026-02-26T00:00:00.000+00:00"}},
		{"4.3.0", "2026-02-25", "2026-02-26T13:00:00Z", []string{"2026-02-25", "2026-02-26"}},
		{"4.6.6", "2026-02-25", "2026-02-26", []string{"2026-02-25", "2026-02-26"}},
		// 4.2: the series runs over date_trunc('day', …); 4.3: over the timestamps themselves.
		{"4.2.10", "2026-02-25T13:00:00Z", "2026-02-26T12:00:00Z", []string{"2026-02-25T00:00:00.000+00:00", "2026-02-26T00:00:00.000+00:00"}},
		{"4.3.0", "2026-02-25T13:00:00Z", "2026-02-26T12:00:00Z", []string{"2026-02-25"}},
	}
	for _, tt := range tests {
		t.Run(tt.version+" "+tt.start+" "+tt.end, func(t *testing.T) {
			s, _ := newSim(t, Options{Version: tt.version})
			w := do(t, s, "POST", "/api/v1/admin/measures", adminTok, map[string]any{
				"keys": []string{"instance_followers"}, "start_at": tt.start, "end_at": tt.end,
				"instance_followers": map[string]any{"domain": "bad.example"},
			})
			wantStatus(t, w, 200)
			got := decode[[]measure](t, w)
			var dates []string
			for _, d := range got[0].Data {
				dates = append(dates, d.Date)
			}
			if !slices.Equal(dates, tt.want) {
				t.Fatalf("dates %v, want %v", dates, tt.want)
			}
		})
	}
}
