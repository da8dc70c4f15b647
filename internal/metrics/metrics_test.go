package metrics

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEveryMetricDocumented: each metric the gateway exports is named in
// docs/metrics.md, so the page cannot fall behind the code.
func TestEveryMetricDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	v := reflect.ValueOf(m).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if n := fqName.FindStringSubmatch(d.String()); n != nil {
				names = append(names, n[1])
			}
		}
	}
	// Registered by app from the parts that hold them (GaugeFunc).
	names = append(names, "gatehouse_audit_queue_depth", "gatehouse_agents_connected", "gatehouse_tunnel_streams", "gatehouse_approvals_pending")
	if len(names) < 20 {
		t.Fatalf("found only %d metrics: %v", len(names), names)
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "`"+n+"`") && !strings.Contains(string(doc), "`"+n+"{") {
			t.Errorf("docs/metrics.md does not name %s", n)
		}
	}
}
