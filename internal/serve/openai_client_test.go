package serve

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssp-project/ssp/internal/fixtures"
)

// TestOpenAIPythonClient runs scripts/test_openai_client.py, which drives
// the server with OpenAI's own Python client (the pinned `openai`
// package): models, plain and agent completions streamed and not, and the
// client's error types for a bad request, an unknown model and a wrong API
// key. The agent's answer it reports must be the one the server gives this
// test. The package is installed into the assets venv by
// scripts/fetch_openai_client.sh when missing; when it cannot be
// installed the test is skipped, or fails under CI=true or
// SSP_REQUIRE_FIXTURES=1.
//
// Mutation seen to fail it: ending each server-sent event with one
// newline instead of a blank line.
func TestOpenAIPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python")
	}
	python := openAIPython(t)
	ts := startServer(t, 4, 8, func(c *Config) { c.APIKey = "test-key" })
	question := benchmarkQuestions(t, 2)[1].Question
	script := filepath.Join(fixtures.Root(), "scripts", "test_openai_client.py")
	out, err := exec.Command(python, script, "--base-url", ts.url+"/v1", "--api-key", "test-key", "--question", question).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var summary struct {
		Answer   string `json:"answer"`
		Searches int    `json:"searches"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("summary line: %v\n%s", err, out)
	}
	status, _, data := ts.post(t, "/v1/chat/completions", map[string]any{"model": "builtin-agent",
		"messages": []map[string]any{{"role": "user", "content": question}}}, "Authorization", "Bearer test-key")
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, data)
	}
	c := decodeCompletion(t, data)
	if summary.Answer != c.Choices[0].Message.Content || summary.Searches != len(c.SSP.Searches) {
		t.Errorf("the Python client got %q after %d searches, this test %q after %d", summary.Answer, summary.Searches, c.Choices[0].Message.Content, len(c.SSP.Searches))
	}
}

// openAIPython returns a Python interpreter that imports openai,
// installing the package with scripts/fetch_openai_client.sh if needed.
func openAIPython(t *testing.T) string {
	t.Helper()
	imports := func() bool { return exec.Command(fixtures.Python(), "-c", "import openai").Run() == nil }
	if imports() {
		return fixtures.Python()
	}
	fetch := filepath.Join(fixtures.Root(), "scripts", "fetch_openai_client.sh")
	cmd := exec.Command(fetch)
	cmd.Dir = fixtures.Root()
	if out, err := cmd.CombinedOutput(); err != nil || !imports() {
		fixtures.Missing(t, "the openai Python package could not be installed by %s (%v): %s", fetch, err, out)
	}
	return fixtures.Python()
}
