package testinfra

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// ModulePath is the module whose root ProjectRoot looks for.
const ModulePath = "github.com/ssm-association-batcher/ssm-association-batcher"

// Names of the tools RequireTools knows.
const (
	ToolDynamoDBLocal = "dynamodb-local" // .tools/dynamodb-local/DynamoDBLocal.jar
	ToolRIE           = "aws-lambda-rie" // .tools/bin/aws-lambda-rie
	ToolJava          = "java"           // java on PATH (DynamoDB Local's runtime)
	ToolGo            = "go"             // go on PATH (BuildBootstrap)
)

// installHint is what every missing-tool error tells the reader to run.
const installHint = "run scripts/install-tools.sh (make tools)"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// ProjectRoot returns the directory holding the module's go.mod, so tests in
// any package, and programs started anywhere inside the tree, find .tools.
// It walks up from the working directory and, failing that, from this source
// file's directory.
func ProjectRoot() (string, error) {
	rootOnce.Do(func() { rootDir, rootErr = findRoot() })
	return rootDir, rootErr
}

func findRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; {
			if isModuleRoot(filepath.Join(dir, "go.mod")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("testinfra: no go.mod of module %s above %s", ModulePath, strings.Join(starts, " or "))
}

func isModuleRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == ModulePath
		}
	}
	return false
}

// ToolsDir returns the project's .tools directory (which may not exist yet).
func ToolsDir() (string, error) {
	root, err := ProjectRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools"), nil
}

// DynamoDBLocalDir returns the folder holding DynamoDBLocal.jar and
// DynamoDBLocal_lib, or an error naming the install command when it is missing.
func DynamoDBLocalDir() (string, error) {
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools, "dynamodb-local")
	if _, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar")); err != nil {
		return "", fmt.Errorf("testinfra: DynamoDB Local is not installed (%s missing): %s", filepath.Join(dir, "DynamoDBLocal.jar"), installHint)
	}
	if fi, err := os.Stat(filepath.Join(dir, "DynamoDBLocal_lib")); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("testinfra: DynamoDB Local is incomplete (%s missing): %s", filepath.Join(dir, "DynamoDBLocal_lib"), installHint)
	}
	return dir, nil
}

// RIEPath returns the path of the aws-lambda-rie binary, or an error naming
// the install command when it is missing.
func RIEPath() (string, error) {
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(tools, "bin", "aws-lambda-rie")
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testinfra: aws-lambda-rie is not installed (%s missing): %s", p, installHint)
	}
	return p, nil
}

// CheckTools reports every missing tool among names (all known tools when
// names is empty), joined into one error.
func CheckTools(names ...string) error {
	if len(names) == 0 {
		names = []string{ToolDynamoDBLocal, ToolRIE, ToolJava, ToolGo}
	}
	var errs []error
	for _, name := range names {
		switch name {
		case ToolDynamoDBLocal:
			if _, err := DynamoDBLocalDir(); err != nil {
				errs = append(errs, err)
			}
		case ToolRIE:
			if _, err := RIEPath(); err != nil {
				errs = append(errs, err)
			}
		case ToolJava, ToolGo:
			if _, err := exec.LookPath(name); err != nil {
				errs = append(errs, fmt.Errorf("testinfra: %s is not on PATH: %s", name, installHint))
			}
		case ToolMoto:
			if _, err := exec.LookPath(name); err != nil {
				errs = append(errs, fmt.Errorf("testinfra: %s is not on PATH: it comes with this machine kind's preinstalled Python tools and cannot be installed here", name))
			}
		default:
			errs = append(errs, fmt.Errorf("testinfra: unknown tool %q", name))
		}
	}
	return errors.Join(errs...)
}

// RequireTools fails the test (it does not skip it) when any of the named
// tools is missing, telling the reader to run scripts/install-tools.sh. CI
// installs the tools, so a missing tool is an error there too. With no names
// it requires every tool.
func RequireTools(tb testing.TB, names ...string) {
	tb.Helper()
	if err := CheckTools(names...); err != nil {
		tb.Fatalf("missing test tools — %s:\n%v", installHint, err)
	}
}

// BuildBootstrap builds the main package pkg (a path relative to the project
// root such as "./cmd/associate", or an import path) as a Lambda custom-runtime
// bootstrap for this machine: CGO_ENABLED=0, -tags lambda.norpc. It writes
// outDir/bootstrap and returns that path. The Go build cache keeps repeated
// builds fast.
func BuildBootstrap(ctx context.Context, pkg, outDir string) (string, error) {
	root, err := ProjectRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testinfra: go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
