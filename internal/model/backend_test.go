package model

import (
	"os"
	"strings"
	"testing"
)

// TestXLABackendMissingPlugin asks for XLA backends whose plugins are not
// installed: nothing is downloaded (the home directory stays empty) and
// the error names the plugin of the backend asked for, where to put it and
// the backend that needs nothing.
func TestXLABackendMissingPlugin(t *testing.T) {
	home, plugins := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", home)
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", plugins)
	t.Setenv(XLADownloadEnv, "")
	_, err := Backend("xla:cuda")
	if err == nil {
		t.Skip("a CUDA PJRT plugin is installed on this machine")
	}
	msg := err.Error()
	for _, want := range []string{"pjrt_c_api_cuda_plugin.so", "PJRT_PLUGIN_LIBRARY_PATH=" + plugins, "--backend go", XLADownloadEnv} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "auto-install") || strings.Contains(msg, "download failed") {
		t.Errorf("a download was attempted:\n%s", msg)
	}
	if strings.Contains(msg, "pjrt_c_api_cpu_plugin") {
		t.Errorf("error for xla:cuda names the CPU plugin:\n%s", msg)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("asking for a backend wrote %v into the home directory (a download)", entries)
	}
}
