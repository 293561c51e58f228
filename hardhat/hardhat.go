// Package hardhat knows Hardhat 3 projects deployed with Hardhat Ignition: which
// files make one, which dependencies may be installed (the lockfile is user input),
// which Ignition module to deploy, the configuration the job runs with (a wrapper
// around the project's own, which it never edits), the commands, and how to read what
// Hardhat printed and wrote. It runs nothing itself.
package hardhat

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// ErrRefused marks a project this service will not run, with the reason.
var ErrRefused = errors.New("project refused")

func refusedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// ConfigNames are the names a Hardhat config file may have.
var ConfigNames = []string{"hardhat.config.ts", "hardhat.config.mts", "hardhat.config.js", "hardhat.config.mjs", "hardhat.config.cjs"}

// Files is what the checks need to know of a project.
type Files interface {
	Has(name string) bool
}

// ConfigOf returns the project's config file, or "" when it is not a Hardhat project.
func ConfigOf(files Files) string {
	for _, n := range ConfigNames {
		if files.Has(n) {
			return n
		}
	}
	return ""
}

// otherLockfiles are lockfiles of package managers this service does not run.
var otherLockfiles = map[string]string{"yarn.lock": "yarn", "pnpm-lock.yaml": "pnpm", "bun.lockb": "bun", "bun.lock": "bun"}

// Registry is the only place dependencies are installed from.
const Registry = "https://registry.npmjs.org/"

// CheckDependencies checks a project's package.json and package-lock.json before
// anything installs them: they are the user's, and npm would fetch what they name. A
// dependency from a file, a link, git or a URL, and a lockfile entry resolved
// anywhere but the npm registry or without an integrity hash, are refused.
func CheckDependencies(files Files, packageJSON, lockfile []byte) error {
	if packageJSON == nil {
		return refusedf("a Hardhat project needs its package.json")
	}
	if lockfile == nil {
		for name, manager := range otherLockfiles {
			if files.Has(name) {
				return refusedf("the project has a %s lockfile (%s) but no package-lock.json: this service installs dependencies with npm ci; run npm install and submit package-lock.json", manager, name)
			}
		}
		return refusedf("the project has no package-lock.json: dependencies are installed exactly as a lockfile pins them (npm ci); run npm install and submit package-lock.json")
	}
	var pkg struct {
		Dependencies         map[string]string `json:"dependencies"`
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	if err := json.Unmarshal(packageJSON, &pkg); err != nil {
		return refusedf("package.json does not parse: %v", err)
	}
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.DevDependencies, pkg.OptionalDependencies} {
		for name, spec := range deps {
			if err := checkSpec(name, spec); err != nil {
				return err
			}
		}
	}
	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version   string `json:"version"`
			Resolved  string `json:"resolved"`
			Integrity string `json:"integrity"`
			Link      bool   `json:"link"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(lockfile, &lock); err != nil {
		return refusedf("package-lock.json does not parse: %v", err)
	}
	if lock.LockfileVersion < 2 || lock.Packages == nil {
		return refusedf("package-lock.json is lockfile version %d: npm 7 or newer writes version 2 or 3; run npm install again", lock.LockfileVersion)
	}
	names := make([]string, 0, len(lock.Packages))
	for k := range lock.Packages {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if k == "" {
			continue // the project itself
		}
		p := lock.Packages[k]
		switch {
		case p.Link:
			return refusedf("package-lock.json links %s to a folder: only packages from the npm registry are installed", k)
		case !strings.HasPrefix(k, "node_modules/") && !strings.Contains(k, "/node_modules/"):
			return refusedf("package-lock.json has a package at %s, outside node_modules (a workspace): not supported", k)
		case p.Resolved == "":
			// Bundled dependencies come inside their parent's tarball.
			continue
		case !strings.HasPrefix(p.Resolved, Registry):
			return refusedf("package-lock.json resolves %s to %s: only the npm registry (%s) is allowed", k, truncate(p.Resolved, 120), Registry)
		case !strings.HasPrefix(p.Integrity, "sha512-") && !strings.HasPrefix(p.Integrity, "sha1-"):
			return refusedf("package-lock.json has no integrity hash for %s", k)
		}
	}
	return nil
}

var badSpecRE = regexp.MustCompile(`^(file:|link:|git\+|git:|github:|gitlab:|bitbucket:|gist:|https?:|workspace:|portal:|patch:)|^[^@/]+/[^@/]+(#.*)?$`)

func checkSpec(name, spec string) error {
	if badSpecRE.MatchString(strings.TrimSpace(spec)) {
		return refusedf("package.json takes %s from %q: only versions from the npm registry are installed", name, truncate(spec, 80))
	}
	if alias, ok := strings.CutPrefix(spec, "npm:"); ok && badSpecRE.MatchString(alias) {
		return refusedf("package.json takes %s from %q: only versions from the npm registry are installed", name, truncate(spec, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ModulesDir is where Ignition modules live.
const ModulesDir = "ignition/modules"

var moduleExts = []string{".ts", ".mts", ".js", ".mjs", ".cjs"}

// Lister lists a project's files.
type Lister interface {
	Files
	Names() []string
}

// ResolveModule says which Ignition module a job deploys: the one asked for, or the
// only one under ignition/modules. Its errors are written for the user.
func ResolveModule(files Lister, module string) (string, error) {
	if module != "" {
		clean := path.Clean(module)
		if path.IsAbs(module) || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "-") {
			return "", fmt.Errorf("module %q: a path inside the project, please", module)
		}
		if !hasExt(clean) {
			return "", fmt.Errorf("module %q: an Ignition module is a .ts or .js file", module)
		}
		if !files.Has(clean) {
			return "", fmt.Errorf("module %q: the project has no %s (modules: %s)", module, clean, strings.Join(modules(files), ", "))
		}
		return clean, nil
	}
	found := modules(files)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("the project has no Ignition module under %s/: add one, or name it with module", ModulesDir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("the project has %d Ignition modules; name the one to deploy with module: %s", len(found), strings.Join(found, ", "))
}

func modules(files Lister) []string {
	var out []string
	for _, n := range files.Names() {
		if path.Dir(n) == ModulesDir && hasExt(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func hasExt(name string) bool {
	for _, e := range moduleExts {
		if strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

// maxParameters bounds a request's Ignition parameters.
const maxParameters = 64 << 10

// CheckParameters checks Ignition parameters: a JSON object, of bounded size.
func CheckParameters(p json.RawMessage) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) > maxParameters {
		return fmt.Errorf("parameters: at most %d bytes", maxParameters)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return fmt.Errorf("parameters: a JSON object, as Ignition takes them ({\"Module\": {\"name\": value}})")
	}
	return nil
}
