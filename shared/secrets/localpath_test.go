package secrets

import "testing"

func TestLocalPath(t *testing.T) {
	tests := []struct{ goos, in, want string }{
		{"linux", "/etc/fediops/token", "/etc/fediops/token"},
		{"darwin", "/Users/a/token", "/Users/a/token"},
		{"windows", "/C:/Users/a/token", "C:/Users/a/token"},
		{"windows", "/c:/token", "c:/token"},
		{"windows", "//server/share/token", "//server/share/token"}, // a UNC path stays as it is
		{"linux", "/C:/odd/but/unix", "/C:/odd/but/unix"},
	}
	for _, tt := range tests {
		if got := localPath(tt.goos, tt.in); got != tt.want {
			t.Errorf("localPath(%s, %q) = %q, want %q", tt.goos, tt.in, got, tt.want)
		}
	}
}
