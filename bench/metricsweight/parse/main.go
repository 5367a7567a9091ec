// Command parse reads Prometheus text format on standard input with
// expfmt's text parser and prints each family's name, type, help and
// metric count; it exits 1 if the text does not parse.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := fams[n]
		fmt.Printf("%s %s %q %d", n, f.GetType(), f.GetHelp(), len(f.GetMetric()))
		if h := f.GetMetric()[0].GetHistogram(); h != nil {
			fmt.Printf(" count=%d sum=%g buckets=%d", h.GetSampleCount(), h.GetSampleSum(), len(h.GetBucket()))
		}
		fmt.Println()
	}
}
