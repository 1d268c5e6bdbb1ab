package main

import "testing"

// The demo writes paths into TOML strings and file:// URLs; a Windows path must come out with
// forward slashes (a backslash is an escape in TOML) and a slash before the drive letter.
func TestFileURLPath(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/demo/lists": "/tmp/demo/lists",
		"C:/demo/lists":   "/C:/demo/lists", // filepath.Abs on Windows, after ToSlash
	} {
		if got := fileURLPath(in); got != want {
			t.Errorf("fileURLPath(%q) = %q, want %q", in, got, want)
		}
	}
}
