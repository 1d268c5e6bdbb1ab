package mastodon

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestPages(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		pages   map[string][]int  // cursor → items
		next    map[string]string // cursor → next cursor
		fail    map[string]error  // cursor → error
		want    []int
		wantErr error
	}{
		{"one page", map[string][]int{"": {1, 2}}, nil, nil, []int{1, 2}, nil},
		{"three pages", map[string][]int{"": {1}, "b": {2}, "c": {3}}, map[string]string{"": "b", "b": "c"}, nil, []int{1, 2, 3}, nil},
		{"empty", nil, nil, nil, nil, nil},
		{"repeated cursor", map[string][]int{"": {1}, "b": {2}, "c": {3}}, map[string]string{"": "b", "b": "c", "c": "b"}, nil, []int{1, 2, 3}, ErrRepeatedCursor},
		{"error on the second page", map[string][]int{"": {1}}, map[string]string{"": "b"}, map[string]error{"b": boom}, []int{1}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pages(context.Background(), func(_ context.Context, cursor string) ([]int, string, error) {
				if e := tt.fail[cursor]; e != nil {
					return nil, "", e
				}
				return tt.pages[cursor], tt.next[cursor], nil
			})
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
