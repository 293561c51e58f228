package foundry

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/semver/v3"
)

// OldestSolc is the oldest compiler line this service compiles with (solc-js builds
// run through one wrapper; 0.5 is the oldest measured to work).
const OldestSolc = "0.5.0"

// Need is a Solidity file's compiler constraint, from its pragma.
type Need struct {
	File       string
	Constraint string
}

// maxScanned bounds the files read to learn which compilers a project needs.
const maxScanned = 20000

var (
	pragmaRE  = regexp.MustCompile(`pragma\s+solidity\s+([^;]+);`)
	importRE  = regexp.MustCompile(`import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']`)
	commentRE = regexp.MustCompile(`(?s)//[^\n]*|/\*.*?\*/`)
)

// CompilerNeeds reads the compiler constraints of the files forge compiles for a
// deployment: the project's sources and scripts, and what they import, followed
// through relative paths, remappings and library folders. Files forge would not
// compile (tests, unused dependencies) do not count, so that a dependency's unused
// file cannot ask for a compiler nobody needs. conf is the sanitized foundry.toml.
func CompilerNeeds(dir string, conf []byte) ([]Need, error) {
	var doc struct {
		Profile map[string]struct {
			Src        string   `toml:"src"`
			Script     string   `toml:"script"`
			Libs       []string `toml:"libs"`
			Remappings []string `toml:"remappings"`
		} `toml:"profile"`
	}
	if _, err := toml.Decode(string(conf), &doc); err != nil {
		return nil, fmt.Errorf("read foundry.toml: %w", err)
	}
	p := doc.Profile["default"]
	src, script := orElse(p.Src, "src"), orElse(p.Script, "script")
	libs := p.Libs
	if len(libs) == 0 {
		libs = []string{"lib", "node_modules"}
	}
	remaps := p.Remappings
	if b, err := os.ReadFile(filepath.Join(dir, "remappings.txt")); err == nil {
		remaps = append(remaps, strings.Split(string(b), "\n")...)
	}
	r := resolver{dir: dir, libs: libs, remaps: parseRemappings(remaps)}

	var queue []string
	for _, root := range []string{src, script} {
		_ = filepath.WalkDir(filepath.Join(dir, filepath.FromSlash(root)), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".sol") {
				rel, _ := filepath.Rel(dir, p)
				queue = append(queue, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	seen := map[string]bool{}
	var needs []Need
	for len(queue) > 0 && len(seen) < maxScanned {
		f := queue[0]
		queue = queue[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			continue
		}
		code := commentRE.ReplaceAllString(string(b), "")
		if m := pragmaRE.FindStringSubmatch(code); m != nil {
			needs = append(needs, Need{File: f, Constraint: strings.TrimSpace(m[1])})
		}
		for _, m := range importRE.FindAllStringSubmatch(code, -1) {
			if target, ok := r.resolve(f, m[1]); ok && !seen[target] {
				queue = append(queue, target)
			}
		}
	}
	sort.Slice(needs, func(i, j int) bool { return needs[i].File < needs[j].File })
	return needs, nil
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type remapping struct{ prefix, target string }

func parseRemappings(lines []string) []remapping {
	var out []remapping
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if _, rest, ok := strings.Cut(l, ":"); ok && strings.Contains(rest, "=") {
			l = rest // a context: it applies to some files; as a guess it applies to all
		}
		prefix, target, ok := strings.Cut(l, "=")
		if ok && prefix != "" {
			out = append(out, remapping{prefix, target})
		}
	}
	// The longest prefix wins, as in solc.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].prefix) > len(out[j].prefix) })
	return out
}

// resolver finds the file an import names, inside the project.
type resolver struct {
	dir    string
	libs   []string
	remaps []remapping
}

func (r resolver) resolve(from, name string) (string, bool) {
	var candidates []string
	if strings.HasPrefix(name, "./") || strings.HasPrefix(name, "../") {
		candidates = append(candidates, path.Join(path.Dir(from), name))
	} else {
		for _, m := range r.remaps {
			if strings.HasPrefix(name, m.prefix) {
				candidates = append(candidates, path.Clean(m.target+strings.TrimPrefix(name, m.prefix)))
				break
			}
		}
		candidates = append(candidates, path.Clean(name))
		for _, lib := range r.libs {
			candidates = append(candidates, path.Join(lib, name))
			// forge's auto-detected remappings: lib/<name>/src for "<name>/…".
			if first, rest, ok := strings.Cut(name, "/"); ok {
				candidates = append(candidates, path.Join(lib, first, "src", rest), path.Join(lib, first, "contracts", rest))
			}
		}
	}
	for _, c := range candidates {
		if c == ".." || strings.HasPrefix(c, "../") || path.IsAbs(c) {
			continue
		}
		if st, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(c))); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return "", false
}

// ResolveCompilers picks the compiler versions a job offers forge, deterministically:
// the version the project pins, when it does; otherwise each file's exact pin, or the
// newest of the default versions that satisfies its range (else the newest that
// exists). Whatever other jobs fetched before does not change the choice. exists lists
// the versions there are (the npm registry's solc releases). The errors are written
// for the user.
func ResolveCompilers(needs []Need, pinned string, defaults, exists []string) ([]string, error) {
	oldest := semver.MustParse(OldestSolc)
	known := map[string]bool{}
	var all []*semver.Version
	for _, v := range exists {
		if sv, err := semver.StrictNewVersion(v); err == nil && sv.Prerelease() == "" {
			known[sv.String()] = true
			all = append(all, sv)
		}
	}
	sort.Sort(sort.Reverse(semver.Collection(all)))
	var defs []*semver.Version
	for _, v := range defaults {
		if sv, err := semver.StrictNewVersion(v); err == nil {
			defs = append(defs, sv)
		}
	}
	sort.Sort(sort.Reverse(semver.Collection(defs)))

	check := func(v *semver.Version, what string) error {
		if v.LessThan(oldest) {
			return fmt.Errorf("%s asks for solc %s: the oldest this service compiles with is %s", what, v, OldestSolc)
		}
		if !known[v.String()] {
			return fmt.Errorf("%s asks for solc %s, which does not exist; the newest of each line: %s", what, v, newestPerLine(all))
		}
		return nil
	}
	if pinned != "" {
		v, err := semver.StrictNewVersion(pinned)
		if err != nil {
			return nil, fmt.Errorf("foundry.toml pins solc %q, not a version", pinned)
		}
		if err := check(v, "foundry.toml"); err != nil {
			return nil, err
		}
		return []string{v.String()}, nil
	}
	picked := map[string]bool{}
	for _, n := range needs {
		c, err := semver.NewConstraint(normalizeConstraint(n.Constraint))
		if err != nil {
			return nil, fmt.Errorf("%s: pragma solidity %q is not a version constraint", n.File, n.Constraint)
		}
		if exact, ok := exactVersion(n.Constraint); ok {
			if err := check(exact, n.File); err != nil {
				return nil, err
			}
			picked[exact.String()] = true
			continue
		}
		v := newest(defs, c)
		if v == nil {
			v = newest(all, c)
		}
		if v == nil {
			return nil, fmt.Errorf("%s: no solc release satisfies pragma solidity %s", n.File, n.Constraint)
		}
		if err := check(v, n.File); err != nil {
			return nil, err
		}
		picked[v.String()] = true
	}
	if len(picked) == 0 && len(defs) > 0 {
		// No pragma anywhere: forge compiles with the default.
		picked[defs[0].String()] = true
	}
	out := make([]string, 0, len(picked))
	for v := range picked {
		out = append(out, v)
	}
	sort.Strings(out)
	return out, nil
}

func newest(vs []*semver.Version, c *semver.Constraints) *semver.Version {
	for _, v := range vs {
		if c.Check(v) {
			return v
		}
	}
	return nil
}

var exactRE = regexp.MustCompile(`^=?\s*v?(\d+\.\d+\.\d+)$`)

func exactVersion(constraint string) (*semver.Version, bool) {
	m := exactRE.FindStringSubmatch(strings.TrimSpace(constraint))
	if m == nil {
		return nil, false
	}
	v, err := semver.StrictNewVersion(m[1])
	return v, err == nil
}

var opGlueRE = regexp.MustCompile(`(\d)([<>=^~])`)

// normalizeConstraint writes a pragma as the semver library reads it: operators
// glued to the version before ("<0.9.0>=0.8.0") apart.
func normalizeConstraint(c string) string {
	return opGlueRE.ReplaceAllString(strings.TrimSpace(c), "$1 $2")
}

func newestPerLine(all []*semver.Version) string {
	seen := map[string]bool{}
	var out []string
	for _, v := range all {
		line := fmt.Sprintf("%d.%d", v.Major(), v.Minor())
		if !seen[line] && !v.LessThan(semver.MustParse(OldestSolc)) {
			seen[line] = true
			out = append(out, v.String())
		}
	}
	return strings.Join(out, ", ")
}

var submoduleRE = regexp.MustCompile(`(?m)^\s*path\s*=\s*(.+?)\s*$`)

// EmptyDependencies lists the dependency folders a project declares but does not
// carry: git submodules (.gitmodules) that were not checked out, and empty folders
// under lib/. A compile that fails for missing imports is explained by them.
func EmptyDependencies(dir string) []string {
	paths := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, ".gitmodules")); err == nil {
		for _, m := range submoduleRE.FindAllStringSubmatch(string(b), -1) {
			if p := path.Clean(strings.Trim(m[1], `"`)); !path.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../") {
				paths[p] = true
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "lib")); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				paths["lib/"+e.Name()] = true
			}
		}
	}
	var out []string
	for p := range paths {
		entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || len(entries) == 0 {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
