package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// TestGrafanaDashboard checks contrib/grafana/opes-milter-dashboard.json
// against the /metrics of both daemons running from this tree: every
// query parses (a small PromQL check, see checkPromQL: the Prometheus
// parser would pull its tsdb packages and newer shared dependencies into
// the module), names only metrics the daemons export, and every family
// they export (but Go's, the process's and deprecated aliases) appears in
// a panel.
func TestGrafanaDashboard(t *testing.T) {
	milterMetrics, calloutMetrics := FreeAddr(t), FreeAddr(t)
	startOpesEdited(t, false, metricsAt(milterMetrics), metricsAt(calloutMetrics))

	families := map[string]string{} // name -> type
	for _, addr := range []string{milterMetrics, calloutMetrics} {
		for name, typ := range exportedFamilies(t, addr) {
			families[name] = typ
		}
	}
	for _, want := range []string{"opes_milter_messages_total", "opes_callout_transactions_total"} {
		if families[want] == "" {
			t.Fatalf("%s not exported; families: %v", want, families)
		}
	}
	// Families that exist only with some configuration: the test's
	// (contrib/opes-milter.toml) has no scanner backend to health-check.
	for name, typ := range conditionalFamilies {
		if families[name] == "" {
			families[name] = typ
		}
	}
	// series: the names a query may use for each family.
	series := map[string]string{}
	for name, typ := range families {
		series[name] = name
		if typ == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				series[name+suffix] = name
			}
		}
	}

	data := []byte(readRepoFile(t, "contrib/grafana/opes-milter-dashboard.json"))
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			names, err := checkPromQL(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, tg.Expr, err)
				continue
			}
			for _, n := range names {
				fam, ok := series[n]
				if !ok {
					t.Errorf("panel %q: %q names %s, which the daemons do not export", p.Title, tg.Expr, n)
					continue
				}
				used[fam] = true
			}
		}
	}
	var missing []string
	for name := range families {
		if !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("exported but in no panel: %s", strings.Join(missing, ", "))
	}
	t.Logf("%d queries, %d families", queries, len(families))
}

// conditionalFamilies are exported only when the configuration has what
// they count, with their type.
var conditionalFamilies = map[string]string{
	"opes_callout_backend_up": "gauge", // services with a scanner backend (clamd, ICAP)
}

// exportedFamilies scrapes addr and returns the opes_* families with
// their type, leaving out deprecated ones (help text "Deprecated").
func exportedFamilies(t *testing.T, addr string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	deprecated := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "#" || !strings.HasPrefix(f[2], "opes_") {
			continue
		}
		switch f[1] {
		case "TYPE":
			out[f[2]] = f[3]
		case "HELP":
			deprecated[f[2]] = strings.HasPrefix(f[3], "Deprecated")
		}
	}
	for name := range deprecated {
		if deprecated[name] {
			delete(out, name)
		}
	}
	return out
}

// promqlFuncs are the functions and aggregations the check accepts.
var promqlFuncs = map[string]bool{
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "topk": true, "bottomk": true,
	"rate": true, "irate": true, "increase": true, "delta": true, "deriv": true,
	"histogram_quantile": true, "sum_over_time": true, "max_over_time": true, "avg_over_time": true,
	"abs": true, "clamp_min": true, "clamp_max": true, "time": true, "vector": true, "label_replace": true,
}

// checkPromQL is a small parser for the subset of PromQL the dashboard
// uses: numbers, selectors (metric, {label matchers}, [range]),
// functions, aggregations with by/without, parentheses, binary
// operators. It returns the metric names the expression selects.
func checkPromQL(expr string) ([]string, error) {
	toks, err := lexPromQL(expr)
	if err != nil {
		return nil, err
	}
	p := &pqParser{toks: toks}
	if err := p.expr(); err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i].s)
	}
	return p.metrics, nil
}

type pqTok struct {
	kind byte // 'i' identifier, 'n' number, 's' string, 'd' duration, 'o' operator, or the punctuation itself
	s    string
}

func lexPromQL(s string) ([]pqTok, error) {
	var out []pqTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, pqTok{'s', s[i : j+1]})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated range")
			}
			d := s[i+1 : i+j]
			if !isDuration(d) {
				return nil, fmt.Errorf("bad range %q", d)
			}
			out = append(out, pqTok{'d', d})
			i += j + 1
		case strings.ContainsRune("(){},", rune(c)):
			out = append(out, pqTok{c, string(c)})
			i++
		case unicode.IsDigit(rune(c)) || c == '.':
			j := i
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || s[j] == '.' || s[j] == 'e') {
				j++
			}
			out = append(out, pqTok{'n', s[i:j]})
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == ':' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, pqTok{'i', s[i:j]})
			i = j
		default:
			for _, op := range []string{"==", "!=", "=~", "!~", ">=", "<=", "=", "+", "-", "*", "/", "%", "^", ">", "<"} {
				if strings.HasPrefix(s[i:], op) {
					out = append(out, pqTok{'o', op})
					i += len(op)
					goto next
				}
			}
			return nil, fmt.Errorf("unexpected %q", c)
		next:
		}
	}
	return out, nil
}

func isDuration(d string) bool {
	if d == "" {
		return false
	}
	digits := strings.TrimRight(d, "smhdwy")
	unit := d[len(digits):]
	if digits == "" || (unit != "s" && unit != "m" && unit != "h" && unit != "d" && unit != "w" && unit != "y" && unit != "ms") {
		return false
	}
	for _, r := range digits {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

type pqParser struct {
	toks    []pqTok
	i       int
	metrics []string
}

func (p *pqParser) peek() pqTok {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return pqTok{}
}

func (p *pqParser) want(kind byte) (pqTok, error) {
	t := p.peek()
	if t.kind != kind {
		return t, fmt.Errorf("want %q, have %q", kind, t.s)
	}
	p.i++
	return t, nil
}

// expr: unary (binop unary)*
func (p *pqParser) expr() error {
	for {
		if err := p.unary(); err != nil {
			return err
		}
		t := p.peek()
		if t.kind != 'o' || t.s == "=" || t.s == "=~" || t.s == "!~" {
			return nil
		}
		p.i++
	}
}

func (p *pqParser) unary() error {
	if t := p.peek(); t.kind == 'o' && (t.s == "-" || t.s == "+") {
		p.i++
	}
	t := p.peek()
	switch t.kind {
	case 'n', 's':
		p.i++
		return nil
	case '(':
		p.i++
		if err := p.expr(); err != nil {
			return err
		}
		_, err := p.want(')')
		return err
	case '{':
		return p.selector("")
	case 'i':
		p.i++
		if promqlFuncs[t.s] {
			return p.call()
		}
		return p.selector(t.s)
	}
	return fmt.Errorf("unexpected %q", t.s)
}

// call: [by|without (labels)] ( args ) [by|without (labels)]
func (p *pqParser) call() error {
	if err := p.grouping(); err != nil {
		return err
	}
	if _, err := p.want('('); err != nil {
		return err
	}
	if p.peek().kind != ')' {
		for {
			if err := p.expr(); err != nil {
				return err
			}
			if p.peek().kind != ',' {
				break
			}
			p.i++
		}
	}
	if _, err := p.want(')'); err != nil {
		return err
	}
	return p.grouping()
}

func (p *pqParser) grouping() error {
	if t := p.peek(); t.kind != 'i' || (t.s != "by" && t.s != "without") {
		return nil
	}
	p.i++
	if _, err := p.want('('); err != nil {
		return err
	}
	for p.peek().kind != ')' {
		if _, err := p.want('i'); err != nil {
			return err
		}
		if p.peek().kind == ',' {
			p.i++
		}
	}
	p.i++
	return nil
}

// selector: [metric] [{ name op "value", ... }] [[range]]
func (p *pqParser) selector(metric string) error {
	if metric != "" {
		if strings.ContainsAny(metric[:1], "0123456789") {
			return fmt.Errorf("bad metric name %q", metric)
		}
		p.metrics = append(p.metrics, metric)
	}
	if p.peek().kind == '{' {
		p.i++
		for p.peek().kind != '}' {
			if _, err := p.want('i'); err != nil {
				return err
			}
			op, err := p.want('o')
			if err != nil || (op.s != "=" && op.s != "!=" && op.s != "=~" && op.s != "!~") {
				return fmt.Errorf("bad label matcher operator %q", op.s)
			}
			if _, err := p.want('s'); err != nil {
				return err
			}
			if p.peek().kind == ',' {
				p.i++
			}
		}
		p.i++
	} else if metric == "" {
		return fmt.Errorf("empty selector")
	}
	if p.peek().kind == 'd' {
		p.i++
	}
	return nil
}

// TestCheckPromQL: the small check refuses what PromQL refuses and finds
// the metric names.
func TestCheckPromQL(t *testing.T) {
	for _, tt := range []struct {
		expr, names string
		ok          bool
	}{
		{`sum by (verdict) (rate(opes_milter_messages_total[5m]))`, "opes_milter_messages_total", true},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b", c=~"d.*"}[1h])))`, "x_bucket", true},
		{`a / b > 0.5`, "a b", true},
		{`max by (instance, version) (x)`, "x", true},
		{`sum(rate(x[5m])`, "", false},
		{`rate(x[5 m])`, "", false},
		{`x{a=b}`, "", false},
		{`sum by (a (x)`, "", false},
		{`rate(x[5m]))`, "", false},
		{`x{a="b}`, "", false},
	} {
		names, err := checkPromQL(tt.expr)
		if (err == nil) != tt.ok || (tt.ok && strings.Join(names, " ") != tt.names) {
			t.Errorf("%q: %v %v", tt.expr, names, err)
		}
	}
}
