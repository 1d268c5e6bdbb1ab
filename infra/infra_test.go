package infra

// The HCL policy test. It proves, from infra/*.tf, cloudbuild.yaml and the registrations in
// ../functions.go, without a provider or a project:
//
//   - every registered event function has its entry in local.functions, its own runtime
//     service account, a Pub/Sub topic, a scheduler job publishing {} to it, and a deploy step
//     in cloudbuild.yaml with the same entry point, topic and accounts; a fanning one
//     (fanout = true) may run var.max_instance_count times at once, learns its topic and may
//     publish to it; every registered HTTP function has its entry in local.http_functions, its
//     own account, and an HTTP deploy step open to all traffic (TestEveryRegistered...,
//     TestCloudBuild...);
//   - the IAM grants are exactly the least-privilege list of iam.tf (TestLeastPrivilege), with
//     no primitive role, nothing project-wide that a narrower grant could do, and one public
//     grant: invoking the webhook's service, which checks signatures (TestNoBroadGrants); each
//     secret grant is on one secret, tokens for approve and blocklist, webhook secrets for the
//     webhook (TestSecrets);
//   - the buckets block public access and keep versions (TestBuckets); variables are described
//     and validated (TestVariablesAndOutputs).
//
// To do so it reads the configuration with a small evaluator: every variable becomes a
// placeholder ("var.<name>" for strings, true for booleans, unknown otherwise; or its default
// in defaults mode), every resource or data instance an object whose attributes all read
// "<type>.<name>[<key>]", and for_each over a known map or set expands into its keys; over
// anything unknown it becomes one symbolic instance with key "*".

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"gopkg.in/yaml.v3"

	"github.com/fediops/fediops/shared/gcpbackup"
)

const frameworkFunctions = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// module is the parsed configuration.
type module struct {
	src       map[string][]byte
	resources map[string]*hclsyntax.Block // "type.name"
	data      map[string]*hclsyntax.Block // "type.name"
	variables map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	terraform []*hclsyntax.Block
}

var (
	moduleOnce sync.Once
	moduleVal  *module
	moduleErr  error
)

// loadModule parses infra/*.tf once per test binary.
func loadModule(t *testing.T) *module {
	t.Helper()
	moduleOnce.Do(func() { moduleVal, moduleErr = parseModule(".") })
	if moduleErr != nil {
		t.Fatal(moduleErr)
	}
	return moduleVal
}

func parseModule(dir string) (*module, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.tf in %s", dir)
	}
	sort.Strings(names)
	m := &module{
		src:       map[string][]byte{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		variables: map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
	}
	p := hclparse.NewParser()
	for _, name := range names {
		f, diags := p.ParseHCLFile(name)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s", diags.Error())
		}
		m.src[name] = f.Bytes
		body := f.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			for _, a := range body.Attributes {
				return nil, fmt.Errorf("%s: unexpected top-level attribute %s", a.SrcRange, a.Name)
			}
		}
		for _, b := range body.Blocks {
			dup := func(kind, key string, seen bool) error {
				if seen {
					return fmt.Errorf("%s: %s %s is declared twice", b.DefRange(), kind, key)
				}
				return nil
			}
			switch b.Type {
			case "resource":
				key := b.Labels[0] + "." + b.Labels[1]
				_, seen := m.resources[key]
				if err := dup("resource", key, seen); err != nil {
					return nil, err
				}
				m.resources[key] = b
			case "data":
				key := b.Labels[0] + "." + b.Labels[1]
				_, seen := m.data[key]
				if err := dup("data", key, seen); err != nil {
					return nil, err
				}
				m.data[key] = b
			case "variable":
				_, seen := m.variables[b.Labels[0]]
				if err := dup("variable", b.Labels[0], seen); err != nil {
					return nil, err
				}
				m.variables[b.Labels[0]] = b
			case "output":
				_, seen := m.outputs[b.Labels[0]]
				if err := dup("output", b.Labels[0], seen); err != nil {
					return nil, err
				}
				m.outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					_, seen := m.locals[name]
					if err := dup("local", name, seen); err != nil {
						return nil, err
					}
					m.locals[name] = a
				}
			case "terraform":
				m.terraform = append(m.terraform, b)
			case "provider", "module", "moved", "import", "check", "removed":
			default:
				return nil, fmt.Errorf("%s: unknown block type %s", b.DefRange(), b.Type)
			}
		}
	}
	return m, nil
}

var spaces = regexp.MustCompile(`\s+`)

// text returns an expression's source, whitespace collapsed.
func (m *module) text(e hcl.Expression) string {
	r := e.Range()
	src := m.src[r.Filename]
	if src == nil || r.End.Byte > len(src) {
		return "?"
	}
	return spaces.ReplaceAllString(strings.TrimSpace(string(src[r.Start.Byte:r.End.Byte])), " ")
}

// resourcesOfType returns the "type.name" keys of every resource of type typ, sorted.
func (m *module) resourcesOfType(typ string) []string {
	var out []string
	for key := range m.resources {
		if strings.HasPrefix(key, typ+".") {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// child returns the first nested block of type typ, or nil.
func child(b *hclsyntax.Block, typ string) *hclsyntax.Block {
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			return c
		}
	}
	return nil
}

// attr returns the attribute name of b (nil if absent).
func attr(b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	if b == nil {
		return nil
	}
	return b.Body.Attributes[name]
}

// instance is one instance of a resource: its for_each key and value.
type instance struct {
	key      string    // "" without for_each/count, "*" when for_each is not known
	value    cty.Value // each.value
	symbolic bool
	label    string // source of the for_each expression, for symbolic instances
}

// evaluator evaluates expressions of a module (see the top of this file).
type evaluator struct {
	m         *module
	vars      map[string]cty.Value
	localVals map[string]cty.Value
	instances map[string][]instance
	ctx       *hcl.EvalContext
}

// symbolicVar gives string variables the value "var.<name>", booleans true (so that
// conditional grants are enabled), everything else an unknown of the variable's type.
func symbolicVar(name string, b *hclsyntax.Block) cty.Value {
	ty := variableType(b)
	switch {
	case ty == cty.String:
		return cty.StringVal("var." + name)
	case ty == cty.Bool:
		return cty.True
	default:
		return cty.UnknownVal(ty)
	}
}

// defaultsVar gives every variable its default; those without one get overrides[name] or an
// unknown value.
func defaultsVar(overrides map[string]cty.Value) func(string, *hclsyntax.Block) cty.Value {
	return func(name string, b *hclsyntax.Block) cty.Value {
		if v, ok := overrides[name]; ok {
			return v
		}
		ty := variableType(b)
		if d := attr(b, "default"); d != nil {
			v, diags := d.Expr.Value(nil)
			if !diags.HasErrors() {
				if cv, err := convert.Convert(v, ty); err == nil {
					return cv
				}
				return v
			}
		}
		return cty.UnknownVal(ty)
	}
}

func variableType(b *hclsyntax.Block) cty.Type {
	a := attr(b, "type")
	if a == nil {
		return cty.DynamicPseudoType
	}
	ty, _, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
	if diags.HasErrors() {
		return cty.DynamicPseudoType
	}
	return ty
}

func newEvaluator(m *module, varValue func(string, *hclsyntax.Block) cty.Value) *evaluator {
	e := &evaluator{
		m:         m,
		vars:      map[string]cty.Value{},
		localVals: map[string]cty.Value{},
		instances: map[string][]instance{},
	}
	for name, b := range m.variables {
		e.vars[name] = varValue(name, b)
	}
	for name := range m.locals {
		e.localVals[name] = cty.DynamicVal
	}
	for key := range m.resources {
		e.instances[key] = []instance{{value: cty.DynamicVal}}
	}
	// Locals and for_each depend on one another; a few rounds reach the fixpoint.
	for round := 0; round < 5; round++ {
		e.build()
		for name, a := range m.locals {
			v, diags := a.Expr.Value(e.ctx)
			if diags.HasErrors() {
				v = cty.DynamicVal
			}
			e.localVals[name] = v
		}
		e.build()
		for key, b := range m.resources {
			e.instances[key] = e.expand(b)
		}
	}
	e.build()
	return e
}

var instanceAttrs = []string{
	"id", "name", "email", "secret_id", "number", "project", "project_id", "location",
	"repository_id", "account_id", "self_link", "unique_id", "url", "role_id", "bucket",
}

// instanceObject stands for a resource or data instance: every attribute reads addr, except
// member, which reads "serviceAccount:" + addr (as google_service_account's does).
func instanceObject(addr string) cty.Value {
	attrs := map[string]cty.Value{"member": cty.StringVal("serviceAccount:" + addr)}
	for _, a := range instanceAttrs {
		attrs[a] = cty.StringVal(addr)
	}
	return cty.ObjectVal(attrs)
}

func (e *evaluator) build() {
	vars := map[string]cty.Value{
		"var":   objectOrEmpty(e.vars),
		"local": objectOrEmpty(e.localVals),
		"path":  cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal("."), "root": cty.StringVal("."), "cwd": cty.StringVal(".")}),
	}
	byType := map[string]map[string]cty.Value{}
	for key, insts := range e.instances {
		typ, name, _ := strings.Cut(key, ".")
		if byType[typ] == nil {
			byType[typ] = map[string]cty.Value{}
		}
		b := e.m.resources[key]
		switch {
		case attr(b, "count") != nil:
			byType[typ][name] = cty.TupleVal([]cty.Value{instanceObject(key + "[0]")})
		case len(insts) == 1 && insts[0].key == "":
			byType[typ][name] = instanceObject(key)
		default:
			objs := map[string]cty.Value{}
			for _, in := range insts {
				objs[in.key] = instanceObject(key + "[" + in.key + "]")
			}
			byType[typ][name] = objectOrEmpty(objs)
		}
	}
	for typ, names := range byType {
		vars[typ] = cty.ObjectVal(names)
	}
	data := map[string]map[string]cty.Value{}
	for key := range e.m.data {
		typ, name, _ := strings.Cut(key, ".")
		if data[typ] == nil {
			data[typ] = map[string]cty.Value{}
		}
		data[typ][name] = instanceObject("data." + key)
	}
	dataObj := map[string]cty.Value{}
	for typ, names := range data {
		dataObj[typ] = cty.ObjectVal(names)
	}
	vars["data"] = objectOrEmpty(dataObj)
	e.ctx = &hcl.EvalContext{Variables: vars, Functions: functions()}
}

func objectOrEmpty(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// expand returns the instances of resource block b.
func (e *evaluator) expand(b *hclsyntax.Block) []instance {
	fe := attr(b, "for_each")
	if fe == nil {
		return []instance{{value: cty.DynamicVal}}
	}
	symbolic := []instance{{key: "*", value: cty.DynamicVal, symbolic: true, label: e.m.text(fe.Expr)}}
	v, diags := fe.Expr.Value(e.ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return symbolic
	}
	ty := v.Type()
	var out []instance
	switch {
	case ty.IsObjectType() || ty.IsMapType():
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			out = append(out, instance{key: k.AsString(), value: val})
		}
	case ty.IsSetType():
		for it := v.ElementIterator(); it.Next(); {
			_, val := it.Element()
			s, err := convert.Convert(val, cty.String)
			if err != nil {
				return symbolic
			}
			out = append(out, instance{key: s.AsString(), value: val})
		}
	default:
		return symbolic
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// in returns the evaluation context of one instance (each.key, each.value).
func (e *evaluator) in(inst instance) *hcl.EvalContext {
	if inst.key == "" {
		return e.ctx
	}
	c := e.ctx.NewChild()
	c.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{
		"key":   cty.StringVal(inst.key),
		"value": inst.value,
	})}
	return c
}

// str evaluates expr to a string; ok is false when it cannot be known here.
func (e *evaluator) str(ctx *hcl.EvalContext, expr hcl.Expression) (string, bool) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", false
	}
	return s.AsString(), true
}

// value evaluates expr; ok is false when it cannot be known here.
func (e *evaluator) value(ctx *hcl.EvalContext, expr hcl.Expression) (cty.Value, bool) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// local returns the value of local.name.
func (e *evaluator) local(name string) cty.Value { return e.localVals[name] }

func functions() map[string]function.Function {
	return map[string]function.Function{
		"alltrue":      allTrueFunc,
		"base64encode": base64EncodeFunc,
		"can":          tryfunc.CanFunc,
		"coalesce":     stdlib.CoalesceFunc,
		"concat":       stdlib.ConcatFunc,
		"contains":     stdlib.ContainsFunc,
		"format":       stdlib.FormatFunc,
		"join":         stdlib.JoinFunc,
		"keys":         stdlib.KeysFunc,
		"length":       stdlib.LengthFunc,
		"lower":        stdlib.LowerFunc,
		"merge":        stdlib.MergeFunc,
		"regexall":     stdlib.RegexAllFunc,
		"setsubtract":  stdlib.SetSubtractFunc,
		"sort":         stdlib.SortFunc,
		"strcontains":  strContainsFunc,
		"tolist":       stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset":        stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"try":          tryfunc.TryFunc,
		"upper":        stdlib.UpperFunc,
		"values":       stdlib.ValuesFunc,
	}
}

var base64EncodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
	},
})

var strContainsFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.Contains(args[0].AsString(), args[1].AsString())), nil
	},
})

var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

// --- the module root: what functions.go registers --------------------------------------

// registrations returns the names the module-root package registers with the Functions
// Framework (functions.CloudEvent / HTTP / Typed with a string literal name), in file order.
func registrations(t *testing.T) []string {
	t.Helper()
	names, _ := registered(t)
	return names
}

// registered returns the registered names and, by name, how each is registered
// ("CloudEvent", "HTTP" or "Typed").
func registered(t *testing.T) ([]string, map[string]string) {
	t.Helper()
	kinds := map[string]string{}
	fset := token.NewFileSet()
	names, err := filepath.Glob("../*.go")
	if err != nil {
		t.Fatal(err)
	}
	var regs []string
	seen := map[string]bool{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		local := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != frameworkFunctions {
				continue
			}
			local = "functions"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
		if local == "" || local == "_" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || pkg.Name != local {
				return true
			}
			switch sel.Sel.Name {
			case "CloudEvent", "HTTP", "Typed":
			default:
				return true
			}
			if len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: the function name must be a string literal", fset.Position(call.Pos()))
				return true
			}
			fn, _ := strconv.Unquote(lit.Value)
			if seen[fn] {
				t.Errorf("%s: %s is registered twice (the framework exits on that)", fset.Position(call.Pos()), fn)
			}
			seen[fn] = true
			regs = append(regs, fn)
			kinds[fn] = sel.Sel.Name
			return true
		})
	}
	if len(regs) == 0 {
		t.Fatal("the module root registers no function")
	}
	return regs, kinds
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --- the function map: registrations, local.functions, topics, jobs, accounts ------------

// functionMap returns local.functions as key => entry point.
func functionMap(t *testing.T, e *evaluator) map[string]string {
	t.Helper()
	v := e.local("functions")
	if !v.IsWhollyKnown() || !v.Type().IsObjectType() {
		t.Fatalf("local.functions must be an object literal of {entry_point = \"...\", ...}; got %#v", v)
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, fn := it.Element()
		if !fn.Type().IsObjectType() || !fn.Type().HasAttribute("entry_point") {
			t.Fatalf("local.functions.%s has no entry_point", k.AsString())
		}
		out[k.AsString()] = fn.GetAttr("entry_point").AsString()
	}
	return out
}

// keyFor returns the local.functions key whose entry point is name.
func keyFor(fns map[string]string, name string) (string, bool) {
	for k, ep := range fns {
		if ep == name {
			return k, true
		}
	}
	return "", false
}

// httpFunction is an entry of local.http_functions.
type httpFunction struct {
	entryPoint  string
	publishesTo string // a key of local.functions
}

// httpFunctionMap returns local.http_functions by key.
func httpFunctionMap(t *testing.T, e *evaluator) map[string]httpFunction {
	t.Helper()
	v := e.local("http_functions")
	if !v.IsWhollyKnown() || !v.Type().IsObjectType() {
		t.Fatalf("local.http_functions must be an object literal of {entry_point = \"...\", publishes_to = \"...\"}; got %#v", v)
	}
	out := map[string]httpFunction{}
	for it := v.ElementIterator(); it.Next(); {
		k, fn := it.Element()
		if !fn.Type().IsObjectType() || !fn.Type().HasAttribute("entry_point") || !fn.Type().HasAttribute("publishes_to") {
			t.Fatalf("local.http_functions.%s needs entry_point and publishes_to", k.AsString())
		}
		out[k.AsString()] = httpFunction{entryPoint: fn.GetAttr("entry_point").AsString(), publishesTo: fn.GetAttr("publishes_to").AsString()}
	}
	return out
}

// fanoutFunctions returns the keys of local.functions whose fanout is true.
func fanoutFunctions(t *testing.T, e *evaluator) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for it := e.local("functions").ElementIterator(); it.Next(); {
		k, fn := it.Element()
		if !fn.Type().HasAttribute("fanout") {
			t.Fatalf("local.functions.%s has no fanout", k.AsString())
		}
		if fn.GetAttr("fanout").True() {
			out[k.AsString()] = true
		}
	}
	return out
}

// topicVar is the environment variable that names a function's topic to it:
// fediops-triage → FEDIOPS_TRIAGE_TOPIC.
func topicVar(topic string) string {
	return strings.ToUpper(strings.ReplaceAll(topic, "-", "_")) + "_TOPIC"
}

// resourceOverFunctions returns the single resource of type typ whose for_each is
// local.functions, and its instance for key.
func resourceOverFunctions(t *testing.T, e *evaluator, typ, key string) (*hclsyntax.Block, instance) {
	t.Helper()
	var found []string
	for _, addr := range e.m.resourcesOfType(typ) {
		b := e.m.resources[addr]
		if fe := attr(b, "for_each"); fe != nil && e.m.text(fe.Expr) == "local.functions" {
			found = append(found, addr)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s with for_each = local.functions, found %v", typ, found)
	}
	for _, in := range e.instances[found[0]] {
		if in.key == key {
			return e.m.resources[found[0]], in
		}
	}
	t.Fatalf("%s has no instance %q", found[0], key)
	return nil, instance{}
}

func mustStr(t *testing.T, e *evaluator, ctx *hcl.EvalContext, b *hclsyntax.Block, name string) string {
	t.Helper()
	a := attr(b, name)
	if a == nil {
		t.Fatalf("%s: no %s", b.DefRange(), name)
	}
	s, ok := e.str(ctx, a.Expr)
	if !ok {
		t.Fatalf("%s: %s = %s cannot be evaluated here", b.DefRange(), name, e.m.text(a.Expr))
	}
	return s
}

// TestEveryRegisteredFunctionIsProvisioned: each function registered in ../functions.go has
// an entry in local.functions, its own runtime service account, a topic and a scheduler job
// that publishes {} to that topic on a validated schedule.
func TestEveryRegisteredFunctionIsProvisioned(t *testing.T) {
	m := loadModule(t)
	e := newEvaluator(m, symbolicVar)
	fns := functionMap(t, e)
	httpFns := httpFunctionMap(t, e)
	regs, kinds := registered(t)
	for _, name := range regs {
		_, event := keyFor(fns, name)
		var http bool
		for _, h := range httpFns {
			http = http || h.entryPoint == name
		}
		switch {
		case kinds[name] == "HTTP" && !http:
			t.Errorf("%s is registered in functions.go as an HTTP function but has no entry in local.http_functions (infra/main.tf)", name)
		case kinds[name] != "HTTP" && !event:
			t.Errorf("%s is registered in functions.go but has no entry in local.functions (infra/main.tf)", name)
		}
	}
	for key, ep := range fns {
		if !slices.Contains(regs, ep) {
			t.Logf("note: local.functions.%s (%s) is provisioned but not registered in functions.go yet", key, ep)
		}
	}

	accounts := map[string]string{}
	for _, addr := range []string{"google_service_account.trigger", "google_service_account.build"} {
		b := m.resources[addr]
		if b == nil {
			t.Fatalf("no %s", addr)
		}
		accounts[mustStr(t, e, e.ctx, b, "account_id")] = addr
	}
	// An HTTP function: its own account, no topic and no schedule of its own; it publishes to
	// the topic of a function of local.functions.
	for key, h := range httpFns {
		t.Run(key, func(t *testing.T) {
			sa := m.resources["google_service_account."+key]
			if sa == nil {
				t.Fatalf("no google_service_account.%s for the HTTP function %s", key, h.entryPoint)
			}
			id := mustStr(t, e, e.ctx, sa, "account_id")
			if other, dup := accounts[id]; dup {
				t.Errorf("service account %s of %s is also %s", id, key, other)
			}
			accounts[id] = key
			if _, ok := fns[h.publishesTo]; !ok {
				t.Errorf("local.http_functions.%s publishes to %q, which is not in local.functions", key, h.publishesTo)
			}
			if _, ok := fns[key]; ok {
				t.Errorf("%s is both an event and an HTTP function", key)
			}
		})
	}
	for key := range fns {
		t.Run(key, func(t *testing.T) {
			sa, saIn := resourceOverFunctions(t, e, "google_service_account", key)
			id := mustStr(t, e, e.in(saIn), sa, "account_id")
			if other, dup := accounts[id]; dup {
				t.Errorf("service account %s of %s is also %s", id, key, other)
			}
			accounts[id] = key

			topic, topicIn := resourceOverFunctions(t, e, "google_pubsub_topic", key)
			topicName := mustStr(t, e, e.in(topicIn), topic, "name")
			topicAddr := "google_pubsub_topic." + topic.Labels[1] + "[" + key + "]"

			job, jobIn := resourceOverFunctions(t, e, "google_cloud_scheduler_job", key)
			ctx := e.in(jobIn)
			target := child(job, "pubsub_target")
			if target == nil {
				t.Fatal("the scheduler job has no pubsub_target")
			}
			if got := mustStr(t, e, ctx, target, "topic_name"); got != topicAddr {
				t.Errorf("the %s job publishes to %s, want %s (%s)", key, got, topicAddr, topicName)
			}
			data, err := base64.StdEncoding.DecodeString(mustStr(t, e, ctx, target, "data"))
			if err != nil {
				t.Fatalf("pubsub_target.data is not base64: %v", err)
			}
			var obj map[string]any
			if err := json.Unmarshal(data, &obj); err != nil || len(obj) != 0 {
				t.Errorf("the %s job publishes %q, want an empty JSON object", key, data)
			}
			if a := attr(target, "attributes"); a != nil {
				t.Errorf("the %s job sets attributes %s; the functions take options from the JSON body only", key, m.text(a.Expr))
			}
			sched := mustStr(t, e, ctx, job, "schedule")
			v, ok := strings.CutPrefix(sched, "var.")
			if !ok || m.variables[v] == nil {
				t.Errorf("the %s schedule is %q, want a variable", key, sched)
			} else if child(m.variables[v], "validation") == nil {
				t.Errorf("variable %s has no validation", v)
			}
			if paused, ok := e.value(ctx, attr(job, "paused").Expr); !ok || paused.True() {
				t.Errorf("the %s job stays paused with functions_deployed = true", key)
			}
		})
	}
}

// --- cloudbuild.yaml ----------------------------------------------------------------------

type buildStep struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Entrypoint string   `yaml:"entrypoint"`
	Args       []string `yaml:"args"`
	WaitFor    []string `yaml:"waitFor"`
}

type buildConfig struct {
	Steps         []buildStep       `yaml:"steps"`
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
}

type deployStep struct {
	id    string
	name  string
	flags map[string][]string // --flag=value (or "" for a bare flag)
	wait  []string
}

func loadCloudBuild(t *testing.T) (buildConfig, []deployStep) {
	t.Helper()
	var c buildConfig
	if err := yaml.Unmarshal(readFile(t, "../cloudbuild.yaml"), &c); err != nil {
		t.Fatalf("cloudbuild.yaml: %v", err)
	}
	var deploys []deployStep
	for _, s := range c.Steps {
		args := s.Args
		if s.Entrypoint != "gcloud" || len(args) < 3 || args[0] != "functions" || args[1] != "deploy" {
			continue
		}
		d := deployStep{id: s.ID, name: args[2], flags: map[string][]string{}, wait: s.WaitFor}
		for _, a := range args[3:] {
			if !strings.HasPrefix(a, "--") {
				t.Errorf("step %s: positional argument %q after the function name", s.ID, a)
				continue
			}
			k, v, _ := strings.Cut(a, "=")
			d.flags[k] = append(d.flags[k], v)
		}
		deploys = append(deploys, d)
	}
	return c, deploys
}

func (d deployStep) flag(name string) (string, bool) {
	v, ok := d.flags[name]
	if !ok || len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// TestCloudBuildDeploysEveryFunction: cloudbuild.yaml tests first, then deploys every
// function of local.functions (so every registered one) in parallel, each with its entry
// point, topic, runtime/trigger/build accounts, retries, one instance, internal ingress and
// FEDIOPS_CONFIG; its substitution defaults match the Terraform defaults.
func TestCloudBuildDeploysEveryFunction(t *testing.T) {
	m := loadModule(t)
	e := newEvaluator(m, symbolicVar)
	fns := functionMap(t, e)
	cfg, deploys := loadCloudBuild(t)

	var test *buildStep
	for i := range cfg.Steps {
		if cfg.Steps[i].ID == "test" {
			test = &cfg.Steps[i]
		}
	}
	if test == nil {
		t.Fatal("cloudbuild.yaml has no step with id test")
	}
	script := strings.Join(test.Args, "\n")
	for _, want := range []string{"go vet ./...", "go test"} {
		if !strings.Contains(script, want) {
			t.Errorf("the test step does not run %q", want)
		}
	}
	if len(test.WaitFor) != 0 {
		t.Errorf("the test step waits for %v; it must come first", test.WaitFor)
	}

	httpFns := httpFunctionMap(t, e)
	fanout := fanoutFunctions(t, e)
	byEntry := map[string]deployStep{}
	for _, d := range deploys {
		ep, _ := d.flag("--entry-point")
		if _, dup := byEntry[ep]; dup {
			t.Errorf("entry point %q is deployed twice", ep)
		}
		byEntry[ep] = d
		_, event := keyFor(fns, ep)
		http := false
		for _, h := range httpFns {
			http = http || h.entryPoint == ep
		}
		if !event && !http {
			t.Errorf("step %s deploys entry point %q, which is in neither local.functions nor local.http_functions", d.id, ep)
		}
	}
	for _, name := range registrations(t) {
		if _, ok := byEntry[name]; !ok {
			t.Errorf("%s is registered in functions.go but cloudbuild.yaml does not deploy it", name)
		}
	}

	trigger := mustStr(t, e, e.ctx, m.resources["google_service_account.trigger"], "account_id")
	build := mustStr(t, e, e.ctx, m.resources["google_service_account.build"], "account_id")
	repo := mustStr(t, e, e.ctx, m.resources["google_artifact_registry_repository.functions"], "repository_id")
	email := func(id string) string { return id + "@${PROJECT_ID}.iam.gserviceaccount.com" }

	invokable := map[string]bool{}
	for _, g := range grants(t, e) {
		if g.Account == "trigger" && g.Kind == "run-service" && g.Role == "roles/run.invoker" {
			invokable[g.Scope] = true
		}
	}

	for key, ep := range fns {
		t.Run(ep, func(t *testing.T) {
			d, ok := byEntry[ep]
			if !ok {
				t.Fatalf("cloudbuild.yaml has no deploy step with --entry-point=%s", ep)
			}
			if !slices.Equal(d.wait, []string{"test"}) {
				t.Errorf("step %s waits for %v, want [test] (deploy after the tests, in parallel)", d.id, d.wait)
			}
			if !invokable[d.name] {
				t.Errorf("function %s: the trigger account may not invoke it (Terraform invokes %v)", d.name, keysOf(invokable))
			}
			sa, saIn := resourceOverFunctions(t, e, "google_service_account", key)
			topic, topicIn := resourceOverFunctions(t, e, "google_pubsub_topic", key)
			want := map[string]string{
				"--gen2":                    "",
				"--runtime":                 "${_RUNTIME}",
				"--region":                  "${_REGION}",
				"--source":                  ".",
				"--entry-point":             ep,
				"--trigger-topic":           mustStr(t, e, e.in(topicIn), topic, "name"),
				"--retry":                   "",
				"--service-account":         email(mustStr(t, e, e.in(saIn), sa, "account_id")),
				"--trigger-service-account": email(trigger),
				"--build-service-account":   "projects/${PROJECT_ID}/serviceAccounts/" + email(build),
				"--docker-repository":       "projects/${PROJECT_ID}/locations/${_REGION}/repositories/" + repo,
				"--ingress-settings":        "internal-only",
				"--max-instances":           "1",
			}
			if fanout[key] {
				// Fanned-out runs of several instances run side by side; leases keep the runs
				// of one instance apart.
				want["--max-instances"] = "${_MAX_INSTANCES}"
			}
			for flag, v := range want {
				got, ok := d.flag(flag)
				if !ok || got != v {
					t.Errorf("step %s: %s = %q (set %v), want %q", d.id, flag, got, ok, v)
				}
			}
			for _, flag := range []string{"--allow-unauthenticated", "--trigger-http", "--trigger-event-filters", "--trigger-bucket"} {
				if _, ok := d.flags[flag]; ok {
					t.Errorf("step %s: %s must not be set", d.id, flag)
				}
			}
			env, _ := d.flag("--set-env-vars")
			if !slices.Contains(strings.Split(env, ","), "FEDIOPS_CONFIG=${_FEDIOPS_CONFIG}") {
				t.Errorf("step %s: --set-env-vars=%q does not set FEDIOPS_CONFIG=${_FEDIOPS_CONFIG}", d.id, env)
			}
			if _, ok := d.flag("--memory"); !ok {
				t.Errorf("step %s: no --memory", d.id)
			}
			timeout, _ := d.flag("--timeout")
			if dur, err := time.ParseDuration(timeout); err != nil || dur <= 0 || dur > 540*time.Second {
				t.Errorf("step %s: --timeout=%q, want at most 540s (the event-function maximum)", d.id, timeout)
			}
			// The function ends its run before the platform kills it: it learns the timeout from
			// FEDIOPS_TIMEOUT, which must say the same as --timeout.
			if !slices.Contains(strings.Split(env, ","), "FEDIOPS_TIMEOUT="+timeout) {
				t.Errorf("step %s: --set-env-vars=%q does not set FEDIOPS_TIMEOUT=%s (= --timeout)", d.id, env, timeout)
			}
			// A fanning function learns its own topic (projects/P/topics/T) to publish to.
			topicName := mustStr(t, e, e.in(topicIn), topic, "name")
			setsTopic := slices.Contains(strings.Split(env, ","), topicVar(topicName)+"=projects/${PROJECT_ID}/topics/"+topicName)
			if fanout[key] != setsTopic {
				t.Errorf("step %s: --set-env-vars=%q: fanout is %v, so %s=projects/${PROJECT_ID}/topics/%s must be set: %v", d.id, env, fanout[key], topicVar(topicName), topicName, fanout[key])
			}
		})
	}

	// The HTTP functions: reached from outside (Mastodon), no topic, no retries, a short
	// timeout; the topic they publish to in their environment; their own account.
	for key, h := range httpFns {
		t.Run(h.entryPoint, func(t *testing.T) {
			d, ok := byEntry[h.entryPoint]
			if !ok {
				t.Fatalf("cloudbuild.yaml has no deploy step with --entry-point=%s", h.entryPoint)
			}
			if d.name != "fediops-"+key {
				t.Errorf("step %s deploys %s, want fediops-%s", d.id, d.name, key)
			}
			if !slices.Equal(d.wait, []string{"test"}) {
				t.Errorf("step %s waits for %v, want [test]", d.id, d.wait)
			}
			want := map[string]string{
				"--gen2":                  "",
				"--runtime":               "${_RUNTIME}",
				"--region":                "${_REGION}",
				"--source":                ".",
				"--entry-point":           h.entryPoint,
				"--trigger-http":          "",
				"--service-account":       email(mustStr(t, e, e.ctx, m.resources["google_service_account."+key], "account_id")),
				"--build-service-account": "projects/${PROJECT_ID}/serviceAccounts/" + email(build),
				"--docker-repository":     "projects/${PROJECT_ID}/locations/${_REGION}/repositories/" + repo,
				"--ingress-settings":      "all",
			}
			for flag, v := range want {
				got, ok := d.flag(flag)
				if !ok || got != v {
					t.Errorf("step %s: %s = %q (set %v), want %q", d.id, flag, got, ok, v)
				}
			}
			// The public invoker grant is Terraform's (iam.tf): the deploy must neither try to set
			// it (the build account may not) nor remove it.
			for _, flag := range []string{"--allow-unauthenticated", "--no-allow-unauthenticated", "--trigger-topic", "--retry", "--trigger-service-account", "--trigger-event-filters"} {
				if _, ok := d.flags[flag]; ok {
					t.Errorf("step %s: %s must not be set", d.id, flag)
				}
			}
			if n, err := strconv.Atoi(d.flags["--max-instances"][0]); err != nil || n < 1 || n > 20 {
				t.Errorf("step %s: --max-instances=%v: bound a public endpoint's instances (1 to 20)", d.id, d.flags["--max-instances"])
			}
			env, _ := d.flag("--set-env-vars")
			vars := strings.Split(env, ",")
			timeout, _ := d.flag("--timeout")
			if dur, err := time.ParseDuration(timeout); err != nil || dur < 10*time.Second || dur > time.Minute {
				t.Errorf("step %s: --timeout=%q, want 10s to 60s (Mastodon waits 10 s)", d.id, timeout)
			}
			topic, topicIn := resourceOverFunctions(t, e, "google_pubsub_topic", h.publishesTo)
			topicName := mustStr(t, e, e.in(topicIn), topic, "name")
			for _, v := range []string{"FEDIOPS_CONFIG=${_FEDIOPS_CONFIG}", "FEDIOPS_TIMEOUT=" + timeout,
				topicVar(topicName) + "=projects/${PROJECT_ID}/topics/" + topicName} {
				if !slices.Contains(vars, v) {
					t.Errorf("step %s: --set-env-vars=%q does not set %s", d.id, env, v)
				}
			}
		})
	}
	if got, want := cfg.Substitutions["_MAX_INSTANCES"], newEvaluator(m, defaultsVar(nil)).vars["max_instance_count"]; !want.IsKnown() || got != want.AsBigFloat().String() {
		t.Errorf("cloudbuild.yaml _MAX_INSTANCES = %q, Terraform's default max_instance_count is %#v", got, want)
	}

	// The substitution defaults agree with the Terraform defaults.
	defaults := newEvaluator(m, defaultsVar(map[string]cty.Value{"project_id": cty.StringVal("${PROJECT_ID}")}))
	if got, want := cfg.Substitutions["_FEDIOPS_CONFIG"], defaults.local("fediops_config"); !want.IsKnown() || got != want.AsString() {
		t.Errorf("cloudbuild.yaml _FEDIOPS_CONFIG = %q, Terraform's default FEDIOPS_CONFIG is %#v", got, want)
	}
	if got, want := cfg.Substitutions["_REGION"], defaults.vars["region"]; !want.IsKnown() || got != want.AsString() {
		t.Errorf("cloudbuild.yaml _REGION = %q, Terraform's default region is %#v", got, want)
	}
	// One runtime for the three functions (_RUNTIME), and the test step builds with its Go.
	rt := functionsRuntime(t, cfg)
	if want := fmt.Sprintf("golang:%d.%d", rt.major, rt.minor); test.Name != want {
		t.Errorf("the test step runs in %s; the functions' runtime %s builds with %s", test.Name, rt.id, want)
	}
	if cfg.Options["logging"] != "CLOUD_LOGGING_ONLY" {
		t.Errorf("options.logging = %v: a build running as a user-managed service account needs CLOUD_LOGGING_ONLY", cfg.Options["logging"])
	}
	if cfg.Options["dynamicSubstitutions"] != true {
		t.Error("options.dynamicSubstitutions must be true: _FEDIOPS_CONFIG's default refers to ${PROJECT_ID}")
	}
}

// fnRuntime is the Cloud Functions runtime of cloudbuild.yaml (_RUNTIME, e.g. go126) and the
// Go version it builds with.
type fnRuntime struct {
	id           string
	major, minor int
}

var runtimeID = regexp.MustCompile(`^go1([0-9]{2})$`)

// functionsRuntime reads _RUNTIME, the one place the runtime is named.
func functionsRuntime(t *testing.T, cfg buildConfig) fnRuntime {
	t.Helper()
	id := cfg.Substitutions["_RUNTIME"]
	m := runtimeID.FindStringSubmatch(id)
	if m == nil {
		t.Fatalf("cloudbuild.yaml _RUNTIME = %q, want a Go runtime such as go126", id)
	}
	minor, _ := strconv.Atoi(m[1])
	return fnRuntime{id: id, major: 1, minor: minor}
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- IAM ----------------------------------------------------------------------------------

// grant is one IAM binding of one instance of an *_iam_member resource.
type grant struct {
	Account string // approve, blocklist, backupaudit, trigger, build (or the raw member)
	Kind    string // project, bucket, secret, run-service, repository, service-account
	Scope   string // the resource the grant is on
	Role    string // roles/... or custom[permissions]
	Cond    string // IAM condition expression
	ForEach string // the for_each expression when the instances are not known here
	Where   string // resource address (not part of the comparison)
}

func (g grant) String() string {
	s := fmt.Sprintf("%s: %s %s: %s", g.Account, g.Kind, g.Scope, g.Role)
	if g.Cond != "" {
		s += " if " + g.Cond
	}
	if g.ForEach != "" {
		s += " (for_each " + g.ForEach + ")"
	}
	return s
}

// iamKinds maps the non-authoritative IAM resources to their kind and scope attribute.
var iamKinds = map[string][2]string{
	"google_project_iam_member":                      {"project", "project"},
	"google_storage_bucket_iam_member":               {"bucket", "bucket"},
	"google_secret_manager_secret_iam_member":        {"secret", "secret_id"},
	"google_cloud_run_v2_service_iam_member":         {"run-service", "name"},
	"google_cloud_run_service_iam_member":            {"run-service", "service"},
	"google_cloudfunctions2_function_iam_member":     {"function", "cloud_function"},
	"google_artifact_registry_repository_iam_member": {"repository", "repository"},
	"google_service_account_iam_member":              {"service-account", "service_account_id"},
	"google_pubsub_topic_iam_member":                 {"topic", "topic"},
	"google_pubsub_subscription_iam_member":          {"subscription", "subscription"},
}

var runtimeAccount = regexp.MustCompile(`^google_service_account\.runtime\[([^\]]+)\]$`)

// grants lists every grant of the configuration, in symbolic mode.
func grants(t *testing.T, e *evaluator) []grant {
	t.Helper()
	var out []grant
	for addr, b := range e.m.resources {
		typ := b.Labels[0]
		if strings.HasSuffix(typ, "_iam_binding") || strings.HasSuffix(typ, "_iam_policy") {
			t.Errorf("%s: %s is authoritative (it removes grants made elsewhere); use *_iam_member", b.DefRange(), typ)
			continue
		}
		if !strings.HasSuffix(typ, "_iam_member") {
			continue
		}
		kind, ok := iamKinds[typ]
		if !ok {
			t.Errorf("%s: %s is not known to this test; add it to iamKinds", b.DefRange(), typ)
			continue
		}
		for _, in := range e.instances[addr] {
			ctx := e.in(in)
			g := grant{Kind: kind[0], Where: addr}
			if in.symbolic {
				g.ForEach = in.label
			}
			g.Account = account(mustStr(t, e, ctx, b, "member"))
			g.Role = e.role(t, ctx, b)
			if s, ok := e.str(ctx, attr(b, kind[1]).Expr); ok {
				g.Scope = s
			} else {
				g.Scope = "?" + e.m.text(attr(b, kind[1]).Expr)
			}
			if c := child(b, "condition"); c != nil {
				g.Cond = mustStr(t, e, ctx, c, "expression")
				mustStr(t, e, ctx, c, "title")
			}
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func account(member string) string {
	m := strings.TrimPrefix(member, "serviceAccount:")
	if s := runtimeAccount.FindStringSubmatch(m); s != nil {
		return s[1]
	}
	if k, ok := strings.CutPrefix(m, "google_service_account."); ok && !strings.Contains(k, "[") {
		return k
	}
	return member
}

// role returns the role of an IAM resource: roles/... as written, or custom[permissions]
// for a google_project_iam_custom_role of this configuration.
func (e *evaluator) role(t *testing.T, ctx *hcl.EvalContext, b *hclsyntax.Block) string {
	t.Helper()
	r := mustStr(t, e, ctx, b, "role")
	custom, ok := strings.CutPrefix(r, "google_project_iam_custom_role.")
	if !ok {
		return r
	}
	cr := e.m.resources["google_project_iam_custom_role."+custom]
	if cr == nil {
		t.Fatalf("%s: unknown custom role %s", b.DefRange(), r)
	}
	v, ok := e.value(e.ctx, attr(cr, "permissions").Expr)
	if !ok {
		t.Fatalf("%s: permissions must be a literal list", cr.DefRange())
	}
	var perms []string
	for it := v.ElementIterator(); it.Next(); {
		_, p := it.Element()
		perms = append(perms, p.AsString())
	}
	sort.Strings(perms)
	return "custom[" + strings.Join(perms, " ") + "]"
}

// TestLeastPrivilege: the grants are exactly this list. Changing a grant means changing
// iam.tf, its comment and this list together.
func TestLeastPrivilege(t *testing.T) {
	e := newEvaluator(loadModule(t), symbolicVar)
	const (
		archive = "google_storage_bucket.archive"
		config  = "google_storage_bucket.config"
		create  = "custom[storage.objects.create]"
		read    = "custom[storage.objects.get]"
		list    = "custom[storage.objects.list]"
		replace = "custom[storage.objects.delete]"
		objects = "projects/_/buckets/google_storage_bucket.archive/objects/var.archive_prefix/"
		secrets = "google_secret_manager_secret.token[*]"
		tokens  = `(for_each { for name, token in var.instance_tokens : name => token if contains(token.readers, "%s") })`
	)
	startsWith := func(p string) string { return `resource.name.startsWith("` + objects + p + `")` }
	const sqlInstance = `resource.type == "sqladmin.googleapis.com/Instance"`
	drillClones := sqlInstance + ` && resource.name.startsWith("projects/var.project_id/instances/` + gcpbackup.DrillPrefix + `")`
	want := []string{
		"approve: bucket " + archive + ": " + create,
		"approve: bucket " + archive + ": " + read,
		"approve: bucket " + archive + ": " + replace + " if " + startsWith("leases/triage/") + " || " + startsWith("triage-lists/sources/") +
			" || " + startsWith("triage-email-blocks/state/"),
		"approve: bucket " + config + ": " + read,
		"approve: secret " + secrets + ": roles/secretmanager.secretAccessor " + fmt.Sprintf(tokens, "approve"),
		"approve: topic google_pubsub_topic.function[approve]: roles/pubsub.publisher",

		"blocklist: bucket " + archive + ": " + create,
		"blocklist: bucket " + archive + ": " + read,
		"blocklist: bucket " + archive + ": " + list,
		"blocklist: bucket " + archive + ": " + replace + " if " + startsWith("leases/blocklist/") +
			" || (" + startsWith("blocklist/") + " && !" + startsWith("blocklist/snapshots/") + " && !" + startsWith("blocklist/objects/") + ")",
		"blocklist: bucket " + config + ": " + read,
		"blocklist: secret " + secrets + ": roles/secretmanager.secretAccessor " + fmt.Sprintf(tokens, "blocklist"),
		"blocklist: topic google_pubsub_topic.function[blocklist]: roles/pubsub.publisher",

		"webhook: bucket " + config + ": " + read,
		"webhook: secret google_secret_manager_secret.webhook[*]: roles/secretmanager.secretAccessor (for_each var.webhook_secrets)",
		"webhook: topic google_pubsub_topic.function[approve]: roles/pubsub.publisher",

		"allUsers: run-service fediops-webhook: roles/run.invoker",

		"backupaudit: bucket " + archive + ": " + create,
		"backupaudit: bucket " + archive + ": " + read,
		"backupaudit: bucket " + archive + ": " + replace + " if " + startsWith("leases/backup/") + " || " + startsWith("backup/drill/state/"),
		"backupaudit: bucket " + config + ": " + read,
		"backupaudit: bucket *: roles/storage.legacyBucketReader (for_each var.audited_buckets)",
		"backupaudit: project *: roles/cloudsql.viewer (for_each local.backup_audit_projects)",
		"backupaudit: project *: roles/gkebackup.viewer (for_each local.backup_audit_projects)",
		"backupaudit: project *: roles/container.viewer (for_each local.backup_audit_projects)",
		// The restore drill (drill.tf): clone the listed sources; change, connect to and
		// delete fediops-drill-* instances only; the optional pod cleanup.
		`backupaudit: project var.project_id: custom[cloudsql.instances.clone] if ` + sqlInstance + ` && resource.name == "projects/var.project_id/instances/*" (for_each var.drill_instances)`,
		"backupaudit: project *: custom[cloudsql.instances.delete cloudsql.instances.update] if " + drillClones + " (for_each local.drill_projects)",
		"backupaudit: project *: roles/cloudsql.client if " + drillClones + " (for_each local.drill_projects)",
		"backupaudit: project *: roles/cloudsql.instanceUser if " + drillClones + " (for_each local.drill_projects)",
		"backupaudit: project var.project_id: custom[container.pods.delete]",

		"trigger: run-service fediops-approve: roles/run.invoker",
		"trigger: run-service fediops-backupaudit: roles/run.invoker",
		"trigger: run-service fediops-blocklist: roles/run.invoker",

		"build: project var.project_id: roles/cloudfunctions.developer",
		"build: project var.project_id: roles/logging.logWriter",
		"build: bucket google_storage_bucket.function_sources: roles/storage.objectAdmin",
		"build: bucket google_storage_bucket.build_staging: roles/storage.objectViewer",
		"build: repository google_artifact_registry_repository.functions: roles/artifactregistry.writer",
		"build: service-account google_service_account.build: roles/iam.serviceAccountUser",
		"build: service-account google_service_account.runtime[approve]: roles/iam.serviceAccountUser",
		"build: service-account google_service_account.runtime[backupaudit]: roles/iam.serviceAccountUser",
		"build: service-account google_service_account.runtime[blocklist]: roles/iam.serviceAccountUser",
		"build: service-account google_service_account.trigger: roles/iam.serviceAccountUser",
		"build: service-account google_service_account.webhook: roles/iam.serviceAccountUser",
	}
	sort.Strings(want)
	var got []string
	where := map[string]string{}
	for _, g := range grants(t, e) {
		got = append(got, g.String())
		where[g.String()] = g.Where
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected grant (%s):\n  %s", where[g], g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing grant:\n  %s", w)
		}
	}
	if t.Failed() {
		t.Logf("all grants:\n  %s", strings.Join(got, "\n  "))
	}
}

// publicGrant is the one grant to a public member: anyone may invoke the webhook's service,
// because Mastodon cannot present a Google identity; TriageWebhook authenticates each delivery
// by its HMAC signature (iam.tf).
const publicGrant = "allUsers: run-service fediops-webhook: roles/run.invoker"

// TestNoBroadGrants: no primitive role, no public member except publicGrant, and at project
// level only roles that cannot be granted on a narrower resource (or carry a condition that
// narrows them).
func TestNoBroadGrants(t *testing.T) {
	m := loadModule(t)
	primitive := regexp.MustCompile(`"roles/(owner|editor|viewer)"`)
	for name, src := range m.src {
		if loc := primitive.FindIndex(src); loc != nil {
			t.Errorf("%s: a primitive role: %s", name, src[loc[0]:loc[1]])
		}
	}
	projectWide := map[string]bool{
		"roles/cloudsql.viewer":          true, // Cloud SQL has no instance-level IAM
		"roles/gkebackup.viewer":         true, // backup plans are listed per project and location
		"roles/cloudfunctions.developer": true, // creating a function is a project permission
		"roles/logging.logWriter":        true, // log writing is project-level
		// Pods in a GKE cluster have no IAM resource of their own (a namespaced RBAC Role is
		// the narrower alternative, docs/deployment.md); the cleanup grant is optional.
		"roles/container.viewer":        true,
		"custom[container.pods.delete]": true,
	}
	e := newEvaluator(m, symbolicVar)
	for _, g := range grants(t, e) {
		switch strings.TrimPrefix(g.Role, "roles/") {
		case "owner", "editor", "viewer":
			t.Errorf("%s: primitive role %s", g.Where, g.Role)
		}
		if strings.Contains(g.Account, "allUsers") || strings.Contains(g.Account, "allAuthenticatedUsers") {
			if g.String() != publicGrant || g.Where != "google_cloud_run_v2_service_iam_member.webhook_public" {
				t.Errorf("%s: public member %s (%s): only the webhook's service may be public", g.Where, g.Account, g)
			}
		}
		if strings.HasPrefix(g.Role, "roles/") && strings.HasSuffix(g.Role, ".admin") {
			t.Errorf("%s: admin role %s", g.Where, g.Role)
		}
		if g.Kind != "project" || projectWide[g.Role] {
			continue
		}
		if g.Cond == "" || (!strings.Contains(g.Cond, "resource.name.startsWith(") && !strings.Contains(g.Cond, "resource.name == ")) {
			t.Errorf("%s: %s is granted on the whole project; grant it on the bucket, secret or service instead", g.Where, g.Role)
		}
	}
	// Storage and Secret Manager roles are granted on a bucket or a secret, never on the
	// project (where a condition on names is all that would stand between an account and the
	// media bucket, the archive or every token).
	for _, g := range grants(t, e) {
		if g.Kind == "project" && (strings.Contains(g.Role, "storage") || strings.Contains(g.Role, "secretmanager")) {
			t.Errorf("%s: %s is a storage or Secret Manager role granted at project level", g.Where, g.Role)
		}
	}
	// The public grant is on the service cloudbuild.yaml deploys as the HTTP function that
	// checks signatures, and nowhere else may a public member appear.
	var public []string
	for _, g := range grants(t, e) {
		if strings.HasPrefix(g.Account, "all") {
			public = append(public, g.String())
		}
	}
	if !slices.Equal(public, []string{publicGrant}) {
		t.Errorf("public grants %v, want exactly [%s]", public, publicGrant)
	}
	_, deploys := loadCloudBuild(t)
	for _, d := range deploys {
		ep, _ := d.flag("--entry-point")
		if d.name == "fediops-webhook" && ep != "TriageWebhook" {
			t.Errorf("the public service fediops-webhook runs %s, not TriageWebhook (which checks each delivery's signature)", ep)
		}
	}
	for name, src := range m.src {
		if n := strings.Count(string(src), `"allUsers"`) + strings.Count(string(src), `"allAuthenticatedUsers"`); n > 0 && (filepath.Base(name) != "iam.tf" || n != 1) {
			t.Errorf("%s names a public member %d time(s); only iam.tf's webhook_public may, once", name, n)
		}
	}
	// The object-replace role only ever comes with a condition.
	for _, g := range grants(t, e) {
		if strings.Contains(g.Role, "storage.objects.delete") && g.Cond == "" {
			t.Errorf("%s: %s without a condition would let %s overwrite or delete any object", g.Where, g.Role, g.Account)
		}
	}
}

// TestSecrets: every secret grant is on one secret (an indexed reference, never a project-
// level role), only approve and blocklist read tokens, and no secret value is in Terraform.
func TestSecrets(t *testing.T) {
	m := loadModule(t)
	e := newEvaluator(m, symbolicVar)
	if v := m.resourcesOfType("google_secret_manager_secret_version"); len(v) > 0 {
		t.Errorf("%v: secret values must not be in Terraform (and its state); add versions with gcloud", v)
	}
	single := regexp.MustCompile(`^google_secret_manager_secret\.[a-z_]+(\[[^\]*]*\]|\[\*\])?$`)
	for _, g := range grants(t, e) {
		if !strings.Contains(g.Role, "secretmanager") {
			continue
		}
		if g.Kind != "secret" {
			t.Errorf("%s: %s on a %s: grant it on the secret", g.Where, g.Role, g.Kind)
			continue
		}
		b := m.resources[g.Where]
		expr := attr(b, "secret_id").Expr
		if !singleReference(expr, "google_secret_manager_secret") || !single.MatchString(g.Scope) {
			t.Errorf("%s: secret_id = %s must reference a single secret", g.Where, m.text(expr))
		}
		switch {
		case g.Account == "webhook" && !strings.HasPrefix(g.Scope, "google_secret_manager_secret.webhook["):
			t.Errorf("%s: the webhook may read %s; it reads webhook secrets only, never a token", g.Where, g.Scope)
		case (g.Account == "approve" || g.Account == "blocklist") && !strings.HasPrefix(g.Scope, "google_secret_manager_secret.token["):
			t.Errorf("%s: %s may read %s; it reads tokens only", g.Where, g.Account, g.Scope)
		case g.Account != "approve" && g.Account != "blocklist" && g.Account != "webhook":
			t.Errorf("%s: %s may read secrets; only approve and blocklist (tokens) and the webhook (webhook secrets) need one", g.Where, g.Account)
		}
		if g.Role != "roles/secretmanager.secretAccessor" {
			t.Errorf("%s: %s, want roles/secretmanager.secretAccessor", g.Where, g.Role)
		}
	}
	for _, addr := range m.resourcesOfType("google_secret_manager_secret") {
		if child(m.resources[addr], "replication") == nil {
			t.Errorf("%s has no replication block", addr)
		}
	}
}

// singleReference reports whether expr names one instance of a resource of type typ:
// typ.name, typ.name["key"] or typ.name[each.key], then attributes; no splat, no for.
func singleReference(expr hcl.Expression, typ string) bool {
	switch x := expr.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		return x.Traversal.RootName() == typ
	case *hclsyntax.RelativeTraversalExpr:
		for _, step := range x.Traversal {
			if _, ok := step.(hcl.TraverseSplat); ok {
				return false
			}
		}
		return singleReference(x.Source, typ)
	case *hclsyntax.IndexExpr:
		switch k := x.Key.(type) {
		case *hclsyntax.TemplateExpr, *hclsyntax.LiteralValueExpr:
		case *hclsyntax.ScopeTraversalExpr:
			if len(k.Traversal) != 2 || k.Traversal.RootName() != "each" {
				return false
			}
			if a, ok := k.Traversal[1].(hcl.TraverseAttr); !ok || a.Name != "key" {
				return false
			}
		default:
			return false
		}
		return singleReference(x.Collection, typ)
	}
	return false
}

// TestBuckets: every bucket (the archive first) uses uniform bucket-level access, enforces
// public access prevention, keeps versions and has lifecycle rules; no ACL resources.
func TestBuckets(t *testing.T) {
	m := loadModule(t)
	e := newEvaluator(m, symbolicVar)
	buckets := m.resourcesOfType("google_storage_bucket")
	if !slices.Contains(buckets, "google_storage_bucket.archive") {
		t.Fatal("no google_storage_bucket.archive")
	}
	for _, addr := range buckets {
		b := m.resources[addr]
		check := func(name string, want cty.Value) {
			a := attr(b, name)
			if a == nil {
				t.Errorf("%s: %s is not set", addr, name)
				return
			}
			v, ok := e.value(e.ctx, a.Expr)
			if !ok || !v.RawEquals(want) {
				t.Errorf("%s: %s = %s, want %#v", addr, name, m.text(a.Expr), want)
			}
		}
		check("uniform_bucket_level_access", cty.True)
		check("public_access_prevention", cty.StringVal("enforced"))
		if v := child(b, "versioning"); v == nil || m.text(attr(v, "enabled").Expr) != "true" {
			t.Errorf("%s: versioning is not enabled", addr)
		}
		if child(b, "lifecycle_rule") == nil {
			t.Errorf("%s: no lifecycle_rule", addr)
		}
		if child(b, "soft_delete_policy") == nil {
			t.Errorf("%s: no soft_delete_policy", addr)
		}
		if a := attr(b, "force_destroy"); a != nil && m.text(a.Expr) != "false" {
			t.Errorf("%s: force_destroy = %s", addr, m.text(a.Expr))
		}
	}
	lc := child(m.resources["google_storage_bucket.archive"], "lifecycle")
	if lc == nil || attr(lc, "prevent_destroy") == nil || m.text(attr(lc, "prevent_destroy").Expr) != "true" {
		t.Error("google_storage_bucket.archive: lifecycle { prevent_destroy = true } protects the audit trail")
	}
	for key := range m.resources {
		if strings.Contains(key, "_acl.") {
			t.Errorf("%s: no ACLs (uniform bucket-level access)", key)
		}
	}
	// The config object is fediops.toml in the config bucket, and FEDIOPS_CONFIG names it.
	if got := e.local("fediops_config"); !got.IsKnown() || got.AsString() != "gs://"+e.local("config_bucket").AsString()+"/fediops.toml" {
		t.Errorf("local.fediops_config = %#v", got)
	}
}

// TestVariablesAndOutputs: every variable is described and validated; the outputs name the
// topics, the buckets and the service accounts; terraform.tfvars.example sets only declared
// variables and every required one.
func TestVariablesAndOutputs(t *testing.T) {
	m := loadModule(t)
	for name, b := range m.variables {
		if d := attr(b, "description"); d == nil || len(m.text(d.Expr)) < 12 {
			t.Errorf("variable %s has no description", name)
		}
		if attr(b, "type") == nil {
			t.Errorf("variable %s has no type", name)
		}
		if child(b, "validation") == nil {
			t.Errorf("variable %s has no validation", name)
		}
	}
	for _, name := range []string{"topics", "archive_bucket", "config_bucket", "fediops_config", "service_accounts", "scheduler_jobs", "webhook_secrets"} {
		b := m.outputs[name]
		if b == nil {
			t.Errorf("no output %s", name)
			continue
		}
		if attr(b, "description") == nil {
			t.Errorf("output %s has no description", name)
		}
	}
	for _, regions := range []string{"region", "scheduler_region"} {
		if m.variables[regions] == nil {
			t.Errorf("no variable %s", regions)
		}
	}

	src := readFile(t, "terraform.tfvars.example")
	f, diags := hclsyntax.ParseConfig(src, "terraform.tfvars.example", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("terraform.tfvars.example: %s", diags.Error())
	}
	set := f.Body.(*hclsyntax.Body).Attributes
	for name, a := range set {
		if m.variables[name] == nil {
			t.Errorf("terraform.tfvars.example sets %s, which is not a variable", name)
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Errorf("terraform.tfvars.example: %s is not a literal: %s", name, diags.Error())
		} else if _, err := convertTo(v, variableType(m.variables[name])); err != nil {
			t.Errorf("terraform.tfvars.example: %s: %v", name, err)
		}
	}
	for name, b := range m.variables {
		if attr(b, "default") == nil && set[name] == nil {
			t.Errorf("terraform.tfvars.example does not set the required variable %s", name)
		}
	}
}

func convertTo(v cty.Value, ty cty.Type) (cty.Value, error) {
	if ty.HasDynamicTypes() || ty.IsObjectType() || ty.IsMapType() && ty.ElementType().IsObjectType() {
		return v, nil // optional() attributes: Terraform's own defaults apply
	}
	return convert.Convert(v, ty)
}

// TestProviderVersions: the google provider constraint admits v6 and v7 only.
func TestProviderVersions(t *testing.T) {
	m := loadModule(t)
	var constraint string
	for _, tf := range m.terraform {
		rp := child(tf, "required_providers")
		if rp == nil {
			continue
		}
		a := attr(rp, "google")
		if a == nil {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		if v.GetAttr("source").AsString() != "hashicorp/google" {
			t.Errorf("google provider source = %s", v.GetAttr("source").AsString())
		}
		constraint = v.GetAttr("version").AsString()
	}
	if constraint == "" {
		t.Fatal("no required_providers.google")
	}
	for version, want := range map[string]bool{"5.45.0": false, "6.0.0": true, "6.50.0": true, "7.0.0": true, "7.12.1": true, "8.0.0": false} {
		if got := admits(t, constraint, version); got != want {
			t.Errorf("version constraint %q admits %s: %v, want %v", constraint, version, got, want)
		}
	}
}

// admits evaluates a constraint of comma-separated ">= X" / "< X" / ">" / "<=" terms.
func admits(t *testing.T, constraint, version string) bool {
	t.Helper()
	parse := func(s string) [3]int {
		var v [3]int
		for i, p := range strings.SplitN(strings.TrimSpace(s), ".", 3) {
			n, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("cannot read version %q", s)
			}
			v[i] = n
		}
		return v
	}
	cmp := func(a, b [3]int) int {
		for i := range a {
			if a[i] != b[i] {
				return a[i] - b[i]
			}
		}
		return 0
	}
	have := parse(version)
	for _, term := range strings.Split(constraint, ",") {
		term = strings.TrimSpace(term)
		var op string
		for _, o := range []string{">=", "<=", ">", "<", "="} {
			if strings.HasPrefix(term, o) {
				op = o
				break
			}
		}
		if op == "" {
			t.Fatalf("this test reads only >=, <=, >, < and = constraints, not %q", term)
		}
		c := cmp(have, parse(strings.TrimPrefix(term, op)))
		ok := map[string]bool{">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0, "=": c == 0}[op]
		if !ok {
			return false
		}
	}
	return true
}

// TestTerraformFmt runs `terraform fmt -check -recursive` when terraform is installed (the
// formatting does not need providers), and formats a copy of terraform.tfvars.example.
func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed")
	}
	run := func(args ...string) {
		cmd := exec.Command(tf, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("fmt", "-check", "-recursive", "-diff", ".")
	example := filepath.Join(t.TempDir(), "example.tfvars")
	if err := os.WriteFile(example, readFile(t, "terraform.tfvars.example"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("fmt", "-check", "-diff", example)
}
