package server

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// What the server finds out about the machine it runs on.

// discoverGPUs lists GPU ids with nvidia-smi, honouring CUDA_VISIBLE_DEVICES.
func discoverGPUs() ([]string, error) {
	out, err := execOutput("nvidia-smi", "--query-gpu=index", "--format=csv,noheader")
	if err != nil {
		return nil, fmt.Errorf("-g: cannot list GPUs with nvidia-smi: %v", err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids = append(ids, l)
		}
	}
	if v := os.Getenv("CUDA_VISIBLE_DEVICES"); v != "" {
		allowed := map[string]bool{}
		for _, id := range strings.Split(v, ",") {
			allowed[strings.TrimSpace(id)] = true
		}
		var kept []string
		for _, id := range ids {
			if allowed[id] {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	if len(ids) == 0 {
		return nil, errors.New("-g: nvidia-smi found no GPU")
	}
	return ids, nil
}

// memoryGB reads the machine's memory from /proc/meminfo (0 when it cannot tell).
func memoryGB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err == nil {
				return kb / (1 << 20)
			}
		}
	}
	return 0
}
