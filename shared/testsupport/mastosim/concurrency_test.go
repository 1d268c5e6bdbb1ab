package mastosim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestConcurrentUse(t *testing.T) {
	s := New(Options{}) // real clock, as in `fediops demo`
	s.AddToken(adminTok, "admin:read admin:write")
	ts := httptest.NewServer(s)
	defer ts.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				id := s.AddAccount(Account{Username: fmt.Sprintf("u%d_%d", g, i)})
				req, _ := http.NewRequest("POST", ts.URL+"/api/v1/admin/accounts/"+id+"/approve", nil)
				req.Header.Set("Authorization", "Bearer "+adminTok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("approve: %d", resp.StatusCode)
				}
				s.AddDomainBlock(DomainBlock{Domain: fmt.Sprintf("d%d-%d.example", g, i)})
				_ = s.Requests()
				_ = s.DomainBlocks()
			}
		}(g)
	}
	wg.Wait()
	if n := len(s.Accounts()); n != 80 {
		t.Fatalf("%d accounts", n)
	}
	for _, a := range s.Accounts() {
		if !a.Approved {
			t.Fatalf("%s not approved", a.Username)
		}
	}
	if n := len(s.Requests()); n != 80 {
		t.Fatalf("%d requests recorded", n)
	}
}
