package samtemplate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// The functions of template.yaml: AssociateFunction answers every trigger;
// WorkerFunction runs the chunks of asynchronous jobs from the jobs queue;
// ReaperFunction settles dead-lettered chunks and unfinished or stalled jobs.
const (
	AssociateFunction = "AssociateFunction"
	WorkerFunction    = "WorkerFunction"
	ReaperFunction    = "ReaperFunction"
)

// The resources the functions' environments name, by logical ID.
const (
	DedupeTable = "DedupeTable"
	JobsTable   = "JobsTable"
	JobsQueue   = "JobsQueue"
	EventBus    = "EventBus"
)

// functionVariables is the environment each function reads: the associate
// function config.Variables and config.AssociateVariables, the worker
// config.Variables and config.WorkerVariables, the reaper
// config.ReaperVariables.
func functionVariables(id string) []config.Variable {
	var vs []config.Variable
	switch id {
	case ReaperFunction:
		vs = slices.Clone(config.ReaperVariables)
	case WorkerFunction:
		vs = append(slices.Clone(config.Variables), config.WorkerVariables...)
	default:
		vs = append(slices.Clone(config.Variables), config.AssociateVariables...)
	}
	return append(vs, config.TracingVariables...)
}

// endpointVariables are the AWS SDK's endpoint variables each function
// declares in template.yaml with an empty value, which the SDK ignores. They
// are declared only so that `sam local invoke --env-vars` can set them: SAM
// CLI overrides the variables a function's template declares and drops every
// other name in the file.
var endpointVariables = map[string][]string{
	AssociateFunction: {"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"},
	WorkerFunction:    {"AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_DYNAMODB"},
	ReaperFunction:    {"AWS_ENDPOINT_URL_DYNAMODB"},
}

// EndpointVariables lists the endpoint variables function id declares (see
// endpointVariables): the services it calls.
func EndpointVariables(id string) []string { return slices.Clone(endpointVariables[id]) }

// Template is template.yaml, read to run its functions on this machine as
// CloudFormation would set them up with the parameters' defaults.
type Template struct{ root node }

// LoadTemplate reads the template at path; an empty path is the project's
// template.yaml.
func LoadTemplate(path string) (*Template, error) {
	if path == "" {
		dir, err := testinfra.ProjectRoot()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "template.yaml")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, err := parseTemplate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Template{root: n}, nil
}

func (t *Template) resource(id, typ string) (node, error) {
	r := t.root.get("Resources", id)
	if !r.ok() {
		return node{}, fmt.Errorf("template has no resource %s", id)
	}
	if got := r.get("Type").str(); got != typ {
		return node{}, fmt.Errorf("%s is a %s, want %s", id, got, typ)
	}
	return r, nil
}

// Environment is function id's Environment.Variables as the template sets
// them with the parameters' defaults, as KEY=VALUE. A variable that refers
// to a resource of the stack (!Ref DedupeTable) takes names[logical ID]; a
// resource missing from names is an error.
func (t *Template) Environment(id string, names map[string]string) ([]string, error) {
	fn, err := t.resource(id, "AWS::Serverless::Function")
	if err != nil {
		return nil, err
	}
	vars := fn.get("Properties", "Environment", "Variables")
	var env []string
	for _, k := range vars.keys() {
		value := vars.get(k)
		if r := value.ref(); r != "" && t.root.get("Resources", r).ok() {
			name, ok := names[r]
			if !ok {
				return nil, fmt.Errorf("%s %s refers to %s, which is not stood up here", id, k, r)
			}
			env = append(env, k+"="+name)
			continue
		}
		v, err := resolveValue(t.root, value)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", id, k, err)
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

// Runtime is what Lambda itself puts in function id's environment from its
// other properties, with the parameters' defaults: AWS_LAMBDA_FUNCTION_NAME
// (the logical ID), AWS_LAMBDA_FUNCTION_TIMEOUT and
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (which the Runtime Interface Emulator
// enforces and reports), and AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL
// from LoggingConfig.
func (t *Template) Runtime(id string) ([]string, error) {
	fn, err := t.resource(id, "AWS::Serverless::Function")
	if err != nil {
		return nil, err
	}
	props := fn.get("Properties")
	env := []string{"AWS_LAMBDA_FUNCTION_NAME=" + id}
	for _, p := range []struct{ prop, name string }{
		{"Timeout", "AWS_LAMBDA_FUNCTION_TIMEOUT"},
		{"MemorySize", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"},
	} {
		v, err := resolveValue(t.root, props.get(p.prop))
		if err != nil || v == "" {
			return nil, fmt.Errorf("%s %s: %v", id, p.prop, err)
		}
		env = append(env, p.name+"="+v)
	}
	logging := props.get("LoggingConfig")
	if f, err := resolveValue(t.root, logging.get("LogFormat")); err != nil {
		return nil, fmt.Errorf("%s LoggingConfig.LogFormat: %w", id, err)
	} else if f != "" {
		env = append(env, "AWS_LAMBDA_LOG_FORMAT="+strings.ToUpper(f))
	}
	if l, err := resolveValue(t.root, logging.get("ApplicationLogLevel")); err != nil {
		return nil, fmt.Errorf("%s LoggingConfig.ApplicationLogLevel: %w", id, err)
	} else if l != "" {
		env = append(env, "AWS_LAMBDA_LOG_LEVEL="+l)
	}
	return env, nil
}

// Parameter is a parameter's default.
func (t *Template) Parameter(name string) (string, error) {
	p := t.root.get("Parameters", name)
	if !p.ok() {
		return "", fmt.Errorf("template has no parameter %s", name)
	}
	return p.get("Default").str(), nil
}

// CreateTable creates table id (DedupeTable, JobsTable) as CloudFormation
// would from its resource, under name: key schema, attribute definitions,
// billing mode and TTL.
func (t *Template) CreateTable(ctx context.Context, client *dynamodb.Client, id, name string) error {
	r, err := t.resource(id, "AWS::DynamoDB::Table")
	if err != nil {
		return err
	}
	props := r.get("Properties")
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingMode(props.get("BillingMode").str()),
	}
	for _, d := range props.get("AttributeDefinitions").items() {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(d.get("AttributeName").str()),
			AttributeType: ddbtypes.ScalarAttributeType(d.get("AttributeType").str()),
		})
	}
	for _, k := range props.get("KeySchema").items() {
		in.KeySchema = append(in.KeySchema, ddbtypes.KeySchemaElement{
			AttributeName: aws.String(k.get("AttributeName").str()),
			KeyType:       ddbtypes.KeyType(k.get("KeyType").str()),
		})
	}
	if _, err := client.CreateTable(ctx, in); err != nil {
		return fmt.Errorf("create %s (%s) from the template: %w", id, name, err)
	}
	ttl := props.get("TimeToLiveSpecification")
	if !ttl.ok() {
		return nil
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(ttl.get("AttributeName").str()),
			Enabled:       aws.Bool(strings.EqualFold(ttl.get("Enabled").str(), "true")),
		},
	}); err != nil {
		return fmt.Errorf("enable TTL of %s (%s) from the template: %w", id, name, err)
	}
	return nil
}

// EnsureTable creates table id under name unless a table of that name
// exists (a DynamoDB Local that outlives one run).
func (t *Template) EnsureTable(ctx context.Context, client *dynamodb.Client, id, name string) (created bool, err error) {
	_, err = client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err == nil {
		return false, nil
	}
	var missing *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &missing) {
		return false, fmt.Errorf("describe table %s: %w", name, err)
	}
	return true, t.CreateTable(ctx, client, id, name)
}

// resolveValue resolves the few intrinsics the template uses for values and
// switches: !If, !Ref to a parameter (its default), with conditions of
// !Equals and !Not. A missing node is "".
func resolveValue(tpl node, n node) (string, error) {
	switch f, arg := n.fn(); f {
	case "":
		return n.str(), nil
	case "Ref":
		p := tpl.get("Parameters", arg.str())
		if !p.ok() {
			return "", fmt.Errorf("!Ref %s: not a parameter", arg.str())
		}
		return p.get("Default").str(), nil
	case "If":
		args := arg.items()
		if len(args) != 3 {
			return "", errors.New("!If: want [condition, then, else]")
		}
		ok, err := resolveCondition(tpl, args[0].str())
		if err != nil {
			return "", err
		}
		if ok {
			return resolveValue(tpl, args[1])
		}
		return resolveValue(tpl, args[2])
	default:
		return "", fmt.Errorf("cannot evaluate !%s", f)
	}
}

func resolveCondition(tpl node, name string) (bool, error) {
	c := tpl.get("Conditions", name)
	if !c.ok() {
		return false, fmt.Errorf("no condition %s", name)
	}
	return resolveCond(tpl, c)
}

func resolveCond(tpl node, c node) (bool, error) {
	switch f, arg := c.fn(); f {
	case "Equals":
		args := arg.items()
		if len(args) != 2 {
			return false, errors.New("!Equals: want two values")
		}
		a, err := resolveValue(tpl, args[0])
		if err != nil {
			return false, err
		}
		b, err := resolveValue(tpl, args[1])
		return a == b, err
	case "Not":
		v, err := resolveCond(tpl, arg.items()[0])
		return !v, err
	case "Condition":
		return resolveCondition(tpl, arg.str())
	default:
		return false, fmt.Errorf("cannot evaluate condition !%s", f)
	}
}
