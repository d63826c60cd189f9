package samtemplate

import (
	"errors"
	"strings"

	"go.yaml.in/yaml/v3"
)

// node wraps a yaml.Node of the template. CloudFormation's short forms
// (!Ref X, !GetAtt A.B, !Sub s, !If [c, a, b], …) decode as nodes whose Tag
// is the short form, so no custom unmarshaller is needed: fn reads them, and
// the long forms ({"Ref": X}, {"Fn::If": […]}) too.
type node struct{ *yaml.Node }

// parseTemplate reads a template: one YAML document.
func parseTemplate(b []byte) (node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return node{}, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return node{}, errors.New("not one YAML document")
	}
	return node{doc.Content[0]}, nil
}

// get follows a path of mapping keys; it returns a zero node when a key is
// missing.
func (n node) get(keys ...string) node {
	cur := n
	for _, k := range keys {
		if cur.Node == nil || cur.Kind != yaml.MappingNode {
			return node{}
		}
		var next *yaml.Node
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == k {
				next = cur.Content[i+1]
				break
			}
		}
		cur = node{next}
	}
	return cur
}

func (n node) ok() bool { return n.Node != nil }

// str is a plain scalar's value ("" for anything else).
func (n node) str() string {
	if n.Node == nil || n.Kind != yaml.ScalarNode || strings.HasPrefix(n.Tag, "!") && !isPlainTag(n.Tag) {
		return ""
	}
	return n.Value
}

func isPlainTag(tag string) bool {
	switch tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!seq", "!!map":
		return true
	}
	return false
}

// keys lists a mapping's keys in order.
func (n node) keys() []string {
	if n.Node == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var ks []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		ks = append(ks, n.Content[i].Value)
	}
	return ks
}

// items lists a sequence's elements.
func (n node) items() []node {
	if n.Node == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]node, len(n.Content))
	for i, c := range n.Content {
		out[i] = node{c}
	}
	return out
}

// strs is a sequence of plain scalars, or a single scalar as a list of one.
func (n node) strs() []string {
	if n.Node != nil && n.Kind == yaml.ScalarNode {
		return []string{n.str()}
	}
	var out []string
	for _, it := range n.items() {
		out = append(out, it.str())
	}
	return out
}

// fn reports the intrinsic function a node is (short or long form), and its
// argument: !Ref X → ("Ref", X), {"Fn::GetAtt": …} → ("GetAtt", …).
func (n node) fn() (string, node) {
	if n.Node == nil {
		return "", node{}
	}
	if strings.HasPrefix(n.Tag, "!") && !isPlainTag(n.Tag) {
		return strings.TrimPrefix(n.Tag, "!"), node{&yaml.Node{Kind: n.Kind, Style: n.Style, Value: n.Value, Content: n.Content, Tag: plainTag(n.Kind)}}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || k == "Condition" {
			return k, node{n.Content[1]}
		}
		if name, ok := strings.CutPrefix(k, "Fn::"); ok {
			return name, node{n.Content[1]}
		}
	}
	return "", node{}
}

func plainTag(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "!!seq"
	case yaml.MappingNode:
		return "!!map"
	}
	return "!!str"
}

// ref returns X for !Ref X, else "".
func (n node) ref() string {
	if f, arg := n.fn(); f == "Ref" {
		return arg.str()
	}
	return ""
}

// getAtt returns "A.B" for !GetAtt A.B or !GetAtt [A, B], else "".
func (n node) getAtt() string {
	f, arg := n.fn()
	if f != "GetAtt" {
		return ""
	}
	if arg.Kind == yaml.SequenceNode {
		return strings.Join(arg.strs(), ".")
	}
	return arg.str()
}
