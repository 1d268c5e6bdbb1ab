package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "github.com/fediops/fediops" // the registrations under test
	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/shared/setup"
)

var baseURL string

// stdout captures what the functions log (they write JSON lines to os.Stdout, as deployed).
var stdout = &syncBuffer{}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// TestMain starts the Functions Framework once per test binary (it cannot be stopped and its
// registry is global), serving every registered function at /<Name> (and the webhook at
// /TriageWebhook/<instance>).
func TestMain(m *testing.M) {
	os.Unsetenv("FUNCTION_TARGET")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// As fediops serve does: /TriageWebhook/<instance> reaches the webhook locally too.
	if err := funcframework.RegisterHTTPFunctionContext(context.Background(), approve.WebhookLocalPath,
		approve.Webhook{Invocation: setup.Process(nil)}.ServeHTTP); err != nil {
		panic(err)
	}
	go func() { _ = funcframework.StartHostPort("127.0.0.1", port) }()
	baseURL = "http://127.0.0.1:" + port
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	real := os.Stdout
	os.Stdout = w
	done := make(chan struct{})
	go func() {
		// The functions' log lines go to the buffer; the benchmarks' result lines, which the
		// testing package writes to os.Stdout too, go on to the real output as well.
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = stdout.Write([]byte(line + "\n"))
			if isBenchOutput(line) {
				// A log marker may have landed after the name the testing package printed.
				if i := strings.Index(line, markerPrefix); i > 0 {
					line = line[:i]
				}
				fmt.Fprintln(real, line)
			}
		}
		_, _ = io.Copy(stdout, r)
		close(done)
	}()
	code := m.Run()
	w.Close()
	<-done
	os.Stdout = real
	if code != 0 {
		fmt.Fprintln(real, "--- function logs ---\n"+stdout.String())
	}
	os.Exit(code)
}

// isBenchOutput reports whether a line of os.Stdout is the testing package's benchmark output.
func isBenchOutput(line string) bool {
	for _, p := range []string{"Benchmark", "--- BENCH", "--- FAIL: Benchmark", "    bench_test.go", "goos:", "goarch:", "pkg:", "cpu:"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return strings.Contains(line, " ns/op")
}

// publish POSTs a Pub/Sub messagePublished CloudEvent in binary mode, as Eventarc does.
func publish(t *testing.T, function string, body []byte, eventTime time.Time) int {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"message": map[string]any{
			"data":        body, // []byte → base64
			"messageId":   "m-" + strconv.FormatInt(time.Now().UnixNano(), 36),
			"message_id":  "m",
			"publishTime": eventTime.UTC().Format(time.RFC3339Nano),
			"attributes":  map[string]string{},
		},
		"subscription": "projects/test/subscriptions/eventarc-sub",
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, baseURL+"/"+function, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", "evt-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	req.Header.Set("ce-type", "google.cloud.pubsub.topic.v1.messagePublished")
	req.Header.Set("ce-source", "//pubsub.googleapis.com/projects/test/topics/fediops-"+strings.ToLower(function))
	req.Header.Set("ce-time", eventTime.UTC().Format(time.RFC3339))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// flushLogs waits until everything written to os.Stdout so far has reached the buffer: the
// pipe is FIFO, so once a marker written now comes out, all earlier lines have.
func flushLogs(t testing.TB) {
	t.Helper()
	marker := fmt.Sprintf("%s-%d", markerPrefix, time.Now().UnixNano())
	fmt.Fprintln(os.Stdout, marker)
	for i := 0; !strings.Contains(stdout.String(), marker); i++ {
		if i > 500 {
			t.Fatal("function logs did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const markerPrefix = "e2e-log-marker"

// resetLogs drops every log line written so far.
func resetLogs(t testing.TB) {
	t.Helper()
	flushLogs(t)
	stdout.Reset()
}

// logLines returns the JSON log lines written since the last reset.
func logLines(t *testing.T) []map[string]any {
	t.Helper()
	flushLogs(t)
	var out []map[string]any
	for _, line := range strings.Split(stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, markerPrefix) || strings.HasPrefix(line, "Function error:") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if _, ok := m["severity"]; !ok {
			t.Errorf("log line without severity: %q", line)
		}
		if _, ok := m["message"]; !ok {
			t.Errorf("log line without message: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func hasLog(lines []map[string]any, severity, contains string) bool {
	for _, l := range lines {
		if l["severity"] == severity && strings.Contains(fmt.Sprint(l["message"]), contains) {
			return true
		}
	}
	return false
}
