package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestConfigDoc keeps docs/config.md and the parser in step: every key the
// parser knows is in the table of its section, and every key in a table is
// known to the parser, so the reference cannot drift from the code.
func TestConfigDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]reflect.Type{
		"Top level":                          reflect.TypeFor[Config](),
		"logging":                            reflect.TypeFor[LoggingConfig](),
		"A database (an entry of `dbs`)":     reflect.TypeFor[DBConfig](),
		"A replica (an entry of `replicas`)": reflect.TypeFor[ReplicaConfig](),
		"age":                                reflect.TypeFor[AgeConfig](),
	}
	documented := map[string][]string{}
	row := regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|")
	section := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			if _, ok := sections[section]; !ok {
				t.Errorf("key %q is documented under %q, a section the test does not know", m[1], section)
			}
			documented[section] = append(documented[section], m[1])
		}
	}
	for section, typ := range sections {
		var parsed []string
		for f := range typ.Fields() {
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				parsed = append(parsed, tag)
			}
		}
		for _, k := range parsed {
			if !slices.Contains(documented[section], k) {
				t.Errorf("docs/config.md, %s: key %q is not documented", section, k)
			}
		}
		for _, k := range documented[section] {
			if !slices.Contains(parsed, k) {
				t.Errorf("docs/config.md, %s: key %q is not known to the parser", section, k)
			}
		}
	}
}
