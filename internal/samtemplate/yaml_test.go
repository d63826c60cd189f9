package samtemplate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := testinfra.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadTemplate(t *testing.T) node {
	t.Helper()
	path := filepath.Join(root(t), "template.yaml")
	if p := os.Getenv("SAMTEMPLATE_FILE"); p != "" { // for checking the checks on a mutated copy
		path = p
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := parseTemplate(b)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return n
}
