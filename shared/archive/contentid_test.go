package archive

import "testing"

func TestContentID(t *testing.T) {
	type action struct{ Op, Domain string }
	a := []action{{"create", "a.example"}, {"delete", "b.example"}}
	id := ContentID("main", a)
	tests := []struct {
		name  string
		other string
		same  bool
	}{
		{"same scope and parts", ContentID("main", []action{{"create", "a.example"}, {"delete", "b.example"}}), true},
		{"other scope", ContentID("other", a), false},
		{"other order", ContentID("main", []action{a[1], a[0]}), false},
		{"one part less", ContentID("main", a[:1]), false},
	}
	for _, tt := range tests {
		if (tt.other == id) != tt.same {
			t.Errorf("%s: %s vs %s, same = %v", tt.name, tt.other, id, tt.same)
		}
	}
	if len(id) != 12 {
		t.Errorf("id %q is not 12 characters", id)
	}
}
