// Command benchtable runs the benchmarks listed in bench/rows.txt and writes
// bench/RESULTS.md (and the raw `go test` output to bench/raw.txt), then
// refreshes the README's summary between <!-- bench:begin --> and
// <!-- bench:end -->. `make bench` runs it; see bench/rows.txt for the format.
//
// Environment: BENCH_COUNT overrides every row's count (quick looks);
// BENCH_ROWS, a regexp, keeps only the rows whose title matches (RESULTS.md
// then holds only those). BENCH_ROWS_FILE picks another rows file,
// bench/rows-NAME.txt, whose results go to bench/RESULTS-NAME.md and
// bench/raw-NAME.txt and whose summary goes between the README's
// <!-- bench-NAME:begin --> and <!-- bench-NAME:end --> (`make bench-scale`
// runs bench/rows-scale.txt). BENCH_TIMEOUT is each `go test`'s -timeout
// (default 30m). BENCH_RAW=FILE renders the `go test -bench` output saved
// in FILE (a run made by hand, e.g. `go test ./test/scale -bench . ...`)
// instead of running the benchmarks.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type row struct {
	pkg, bench, metric, benchtime string
	count                         int
	title, ours, alt              string
	target                        float64
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run() error {
	rowsFile := "bench/rows.txt"
	if f := os.Getenv("BENCH_ROWS_FILE"); f != "" {
		rowsFile = f
	}
	// bench/rows-scale.txt: suffix "-scale".
	suffix := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(rowsFile), "rows"), ".txt")
	resultsFile, rawFile, target := "bench/RESULTS"+suffix+".md", "bench/raw"+suffix+".txt", "make bench"+suffix
	timeout := "30m"
	if t := os.Getenv("BENCH_TIMEOUT"); t != "" {
		timeout = t
	}
	rows, err := readRows(rowsFile)
	if err != nil {
		return err
	}
	start := time.Now()
	loadBefore := loadavg()
	// One `go test` per package, benchtime and count.
	type key struct {
		pkg, benchtime string
		count          int
	}
	var order []key
	groups := map[key][]row{}
	for _, r := range rows {
		k := key{r.pkg, r.benchtime, r.count}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	results := map[string][]map[string]float64{} // benchmark -> runs -> unit -> value
	var raw bytes.Buffer
	cpu := ""
	if f := os.Getenv("BENCH_RAW"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(&raw, "$ (BENCH_RAW=%s)\n%s\n", f, b)
		parse(string(b), results, &cpu)
		order = nil
	}
	for _, k := range order {
		var tops []string
		seen := map[string]bool{}
		for _, r := range groups[k] {
			top, _, _ := strings.Cut(r.bench, "/")
			if !seen[top] {
				seen[top] = true
				tops = append(tops, regexp.QuoteMeta(top))
			}
		}
		args := []string{"test", k.pkg, "-run", "^$", "-bench", "^(" + strings.Join(tops, "|") + ")$",
			"-benchtime", k.benchtime, "-count", strconv.Itoa(k.count), "-timeout", timeout}
		fmt.Fprintf(os.Stderr, "benchtable: go %s\n", strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		var out bytes.Buffer
		cmd.Stdout = io.MultiWriter(&out, os.Stderr)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
		fmt.Fprintf(&raw, "$ go %s\n%s\n", strings.Join(args, " "), out.String())
		parse(out.String(), results, &cpu)
	}
	if err := os.WriteFile(rawFile, raw.Bytes(), 0o644); err != nil {
		return err
	}
	table, summary, missing := render(rows, results)
	if len(missing) > 0 {
		return fmt.Errorf("no ours-/alt- metrics for: %s (see %s)", strings.Join(missing, "; "), rawFile)
	}
	head := fmt.Sprintf("Measured %s on %s (%d CPUs, %s, %s), commit %s, local control plane %s; `%s` took %s; load average %s before, %s after (the machine may be shared).\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), orUnknown(cpu), runtime.NumCPU(), goVersion(), runtime.GOOS+"/"+runtime.GOARCH,
		commit(), k8sVersion(), target, time.Since(start).Round(time.Second), loadBefore, loadavg())
	if f := os.Getenv("BENCH_RAW"); f != "" {
		head = fmt.Sprintf("Rendered %s from %s, a `go test -bench` run made by hand on %s (%d CPUs, %s, %s), commit %s, local control plane %s (the machine may be shared; see the run's own notes).\n",
			time.Now().UTC().Format("2006-01-02 15:04 MST"), f, orUnknown(cpu), runtime.NumCPU(), goVersion(), runtime.GOOS+"/"+runtime.GOARCH, commit(), k8sVersion())
	}
	doc := "# Benchmark results\n\nWritten by `" + target + "` (hack/benchtable from " + rowsFile + "); do not edit.\n" + head + `
Each row: median of the runs of the plugin ("ours") and of the alternative a user would run,
both measured in every iteration of the same benchmark, and the median of the per-run ratios
alternative/ours: above 1 the plugin is faster (or smaller), below 1 slower. For offline verify the
alternative is the floor, a bare signature check with the same key. Raw output: ` + rawFile + `.

` + table
	if err := os.WriteFile(resultsFile, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\n%s\nbenchtable: wrote %s and %s\n", table, resultsFile, rawFile)
	return updateReadme("README.md", "bench"+suffix, resultsFile, head, summary)
}

func readRows(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keep *regexp.Regexp
	if s := os.Getenv("BENCH_ROWS"); s != "" {
		if keep, err = regexp.Compile(s); err != nil {
			return nil, fmt.Errorf("BENCH_ROWS: %w", err)
		}
	}
	var rows []row
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, " | ")
		if len(fs) != 8 && len(fs) != 9 {
			return nil, fmt.Errorf("%s:%d: want 8 or 9 fields separated by \" | \", got %d", path, n, len(fs))
		}
		for i := range fs {
			fs[i] = strings.TrimSpace(fs[i])
		}
		r := row{pkg: fs[0], bench: fs[1], metric: fs[2], benchtime: fs[3], title: fs[5], ours: fs[6], alt: fs[7]}
		if r.count, err = strconv.Atoi(fs[4]); err != nil || r.count < 1 {
			return nil, fmt.Errorf("%s:%d: count %q is not a positive number", path, n, fs[4])
		}
		if c := os.Getenv("BENCH_COUNT"); c != "" {
			if r.count, err = strconv.Atoi(c); err != nil || r.count < 1 {
				return nil, fmt.Errorf("BENCH_COUNT %q is not a positive number", c)
			}
		}
		if len(fs) == 9 {
			if r.target, err = strconv.ParseFloat(fs[8], 64); err != nil {
				return nil, fmt.Errorf("%s:%d: target %q: %v", path, n, fs[8], err)
			}
		}
		if keep == nil || keep.MatchString(r.title) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no rows (BENCH_ROWS=%q)", path, os.Getenv("BENCH_ROWS"))
	}
	return rows, sc.Err()
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` lines: NAME-P  N  V1 U1  V2 U2 ...
func parse(out string, results map[string][]map[string]float64, cpu *string) {
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "cpu: "); ok {
			*cpu = strings.TrimSpace(c)
		}
		fs := strings.Fields(line)
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(fs); i += 2 {
			if v, err := strconv.ParseFloat(fs[i], 64); err == nil {
				m[fs[i+1]] = v
			}
		}
		name := procSuffix.ReplaceAllString(fs[0], "")
		results[name] = append(results[name], m)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func render(rows []row, results map[string][]map[string]float64) (table, summary string, missing []string) {
	var t, s strings.Builder
	t.WriteString("| Row | Plugin (ours) | median | Alternative | median | alt/ours | runs |\n|---|---|---:|---|---:|---:|---:|\n")
	s.WriteString("| Row | Plugin | Alternative | alt/ours |\n|---|---:|---:|---:|\n")
	for _, r := range rows {
		var ours, alt, ratio []float64
		oursRate, altRate := rates(results[r.bench], "ours-"), rates(results[r.bench], "alt-")
		for _, run := range results[r.bench] {
			o, ok1 := run["ours-"+r.metric]
			a, ok2 := run["alt-"+r.metric]
			if !ok1 || !ok2 || o <= 0 {
				continue
			}
			ours, alt, ratio = append(ours, o), append(alt, a), append(ratio, a/o)
		}
		if len(ratio) == 0 {
			missing = append(missing, r.bench+" "+r.metric)
			continue
		}
		mo, ma, mr := median(ours), median(alt), median(ratio)
		flag, ratioFmt := "", "%.2f%s"
		if r.target > 0 && mr < r.target {
			// Three decimals, so that 0.897 does not read as 0.90.
			flag, ratioFmt = fmt.Sprintf(" (below target %.2f)", r.target), "%.3f%s"
		}
		fo, fa := format(mo, r.metric), format(ma, r.metric)
		if r.metric == "ns/op" {
			fo, fa = fo+oursRate, fa+altRate
		}
		ratioCell := fmt.Sprintf(ratioFmt, mr, flag)
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %d |\n", r.title, r.ours, fo, r.alt, fa, ratioCell, len(ratio))
		fmt.Fprintf(&s, "| %s | %s | %s | %s |\n", r.title, fo, fa, ratioCell)
	}
	return t.String(), s.String(), missing
}

// rates shows throughputs a benchmark reports beside its times (metrics
// PREFIX + "UNIT/s", e.g. ours-tokens/s) as " (median UNIT/s)".
func rates(runs []map[string]float64, prefix string) string {
	vals := map[string][]float64{}
	for _, run := range runs {
		for unit, v := range run {
			if strings.HasPrefix(unit, prefix) && strings.HasSuffix(unit, "/s") {
				vals[strings.TrimPrefix(unit, prefix)] = append(vals[strings.TrimPrefix(unit, prefix)], v)
			}
		}
	}
	var units []string
	for u := range vals {
		units = append(units, u)
	}
	sort.Strings(units)
	out := ""
	for _, u := range units {
		out += fmt.Sprintf(" (%.0f %s)", median(vals[u]), u)
	}
	return out
}

func format(v float64, metric string) string {
	if metric == "ns/op" {
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.2f s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.1f ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1f µs", v/1e3)
		}
		return fmt.Sprintf("%.0f ns", v)
	}
	switch {
	case strings.HasSuffix(metric, "MB"):
		return fmt.Sprintf("%.1f MB", v)
	case strings.HasSuffix(metric, "-s"): // seconds, e.g. apply-s
		return fmt.Sprintf("%.2f s", v)
	case strings.HasSuffix(metric, "-ms"): // milliseconds, e.g. max-ms
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.1f %s", v, metric)
}

// updateReadme replaces the summary between <!-- MARKER:begin --> and
// <!-- MARKER:end -->.
func updateReadme(path, marker, resultsFile, head, summary string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- "+marker+":begin -->", "<!-- "+marker+":end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		fmt.Fprintf(os.Stderr, "benchtable: %s has no %s ... %s markers; not updated\n", path, begin, end)
		return nil
	}
	if os.Getenv("BENCH_ROWS") != "" {
		fmt.Fprintln(os.Stderr, "benchtable: BENCH_ROWS is set: README summary not updated")
		return nil
	}
	body := begin + "\n" + head + "\n" + summary + "\nDetails and how each side is measured: [" + resultsFile + "](" + resultsFile + ").\n" + end
	return os.WriteFile(path, []byte(s[:i]+body+s[j+len(end):]), 0o644)
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func k8sVersion() string {
	b, err := os.ReadFile("hack/controlplane/go.mod")
	if err != nil {
		return "unknown"
	}
	if m := regexp.MustCompile(`k8s\.io/kubernetes (v\S+)`).FindSubmatch(b); m != nil {
		return "Kubernetes " + string(m[1])
	}
	return "unknown"
}

// loadavg is the 1-minute load average, "?" where /proc is missing.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}
