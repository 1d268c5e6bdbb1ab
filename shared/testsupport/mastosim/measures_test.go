package mastosim

import (
	"net/url"
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
				if len(m.Data) != 21 || m.Data[0].Date != "2026-08-01T00:00:00.000+00:00" || m.Data[20].Date != "2026-08-21T00:00:00.000+00:00" || m.Data[0].Value != "0" {
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
	s, _ := newSim(t, Options{})
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

	opt, _ := newSim(t, Options{MeasuresDatesOptional: true})
	b = base()
	delete(b, "start_at")
	delete(b, "end_at")
	w = do(t, opt, "POST", "/api/v1/admin/measures", adminTok, b)
	wantStatus(t, w, 200)
	if got := decode[[]measure](t, w); len(got) != 1 || got[0].Total != "0" || len(got[0].Data) != 0 {
		t.Fatalf("dateless measures = %+v", got)
	}

	off, _ := newSim(t, Options{DisableMeasures: true})
	wantError(t, do(t, off, "POST", "/api/v1/admin/measures", adminTok, base()), 404, "Record not found")
}
