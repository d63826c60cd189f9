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

// TestFnOfPlainCollections: a plain list or mapping is no intrinsic (yaml
// tags them !!seq and !!map), and the long forms are read like the short.
func TestFnOfPlainCollections(t *testing.T) {
	n, err := parseTemplate([]byte("a: [x, y]\nb: {k: v}\nc: {Ref: P}\nd: {\"Fn::GetAtt\": [Q, Arn]}\ne: !If [C, [x], [y]]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "", "b": "", "c": "Ref", "d": "GetAtt", "e": "If"} {
		if f, _ := n.get(key).fn(); f != want {
			t.Errorf("%s: fn %q, want %q", key, f, want)
		}
	}
	if n.get("c").ref() != "P" || n.get("d").getAtt() != "Q.Arn" {
		t.Errorf("long forms: ref %q, getAtt %q", n.get("c").ref(), n.get("d").getAtt())
	}
}
