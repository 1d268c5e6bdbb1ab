package approve

import (
	"strings"
	"testing"
)

func TestListAndEmailBlockKeys(t *testing.T) {
	_, s, err := loadSection(t, minimal+`
[triage]
reject_presets = ["webmail", "disposable"]
approve_domain_sources = [ { url = "https://lists.example/uni.csv" } ]
reject_domain_sources = [ { url = "gs://bucket/spam.txt", name = "spam", format = "text" } ]
sync_email_domain_blocks = true
email_domain_blocks_max_additions = -1

[[instance]]
name = "gts"
url = "https://gts.example"
token = "env://GTS"
[instance.triage]
sync_email_domain_blocks = false
email_domain_blocks_max_removals = 5
`)
	if err != nil {
		t.Fatal(err)
	}
	main, gts := s.For("main").EmailBlocks, s.For("gts").EmailBlocks
	if !main.Read || !main.Sync || main.MaxAdditions != -1 || main.MaxRemovals != DefaultEmailBlocksMaxRemovals || main.RequireApproval {
		t.Errorf("main %+v", main)
	}
	if gts.Sync || gts.MaxRemovals != 5 || gts.MaxAdditions != -1 {
		t.Errorf("gts %+v", gts)
	}
	srcs, err := s.Sources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, src := range srcs {
		names = append(names, src.List())
	}
	if strings.Join(names, "|") != "approve_domain_sources lists.example/uni.csv|reject_domain_sources spam|reject_presets disposable" {
		t.Errorf("sources %v", names)
	}
	if s.MaxShrink() != DefaultMaxListShrink || s.MaxSourceBytes != DefaultMaxListBytes || s.RequestTimeout.Duration != DefaultListTimeout {
		t.Errorf("defaults %v %v %v", s.MaxShrink(), s.MaxSourceBytes, s.RequestTimeout)
	}
}

func TestListKeyProblems(t *testing.T) {
	_, _, err := loadSection(t, minimal+`
[triage]
approve_presets = ["public"]
reject_presets = ["disposable"]
approve_domain_sources = [
  { url = "http://lists.example/x.txt" },
  { url = "ftp://lists.example/x.txt" },
  { url = "file://relative/x.txt" },
  { url = "" },
  { url = "https://a.example/l.txt", format = "xml" },
  { url = "https://b.example/l.txt", name = "dup" },
  { url = "https://c.example/l.txt", name = "dup" },
]
reject_domain_sources = [ { url = "https://d.example/l.txt", name = "disposable" } ]
max_source_shrink = 120
email_domain_blocks_max_additions = -2

[[instance]]
name = "other"
url = "https://o.example"
token = "env://O"
[instance.triage]
email_domain_blocks_max_removals = -5
`)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"approve_presets[0]", "approve_domain_sources[0].url", "plain http is only allowed on loopback",
		"approve_domain_sources[1].url", "approve_domain_sources[2].url", "file URLs must be absolute",
		"approve_domain_sources[3].url", "is required", "approve_domain_sources[4].format",
		"approve_domain_sources[6].name", `"dup" is used by another source`,
		"taken by reject_presets", "max_source_shrink", "triage.email_domain_blocks_max_additions",
		"instance[1].triage.email_domain_blocks_max_removals",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
