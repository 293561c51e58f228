package deployment

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/deployer-dev/deployer/cache/compilecache"
	"github.com/deployer-dev/deployer/cache/compilers"
	"github.com/deployer-dev/deployer/cache/npmdeps"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
)

// A Hardhat job runs the same pipeline as a Foundry one (image, chain, gateway,
// container, compile cache, sender lock, confirmation) with its own steps where the
// frameworks differ: its dependencies are installed first (cache/npmdeps), its config
// is run in the container to learn its compilers (the probe), it compiles with
// `hardhat build` and deploys an Ignition module, whose deployed_addresses.json names
// what it made.

func (j *job) hardhat() bool { return j.p.Framework == "hardhat" }

// layout is what the job's compilation leaves, which the compile cache keeps.
func (j *job) layout() compilecache.Layout {
	if j.hardhat() {
		return compilecache.Hardhat
	}
	return compilecache.Foundry
}

// hardhatSkipped are what a Hardhat project's copy leaves out: its dependencies (the
// job links them from their volume), its build output, and an uploaded Ignition
// deployment, which Ignition would resume instead of deploying.
func hardhatSkipped(rel string, isDir bool) bool {
	switch rel {
	case "node_modules", "artifacts", "cache", hardhat.DeploymentsDir:
		return true
	}
	return false
}

// packOptions are what the job's copy of the project replaces and adds.
func (j *job) packOptions() projects.PackOptions {
	if !j.hardhat() {
		return projects.PackOptions{
			Replace: map[string][]byte{"foundry.toml": j.proj.plan.Config.TOML},
			Beside:  compilers.View(dataDirName, j.solc),
		}
	}
	h := j.proj.plan.Hardhat
	fallback := j.d.Compilers.Defaults()[0]
	replace := map[string][]byte{
		hardhat.WrapperConfig: hardhat.Wrapper(h.Config, compilers.Mount, fallback),
		hardhat.ProbeConfig:   hardhat.Probe(h.Config, compilers.Mount, fallback),
	}
	if len(h.Parameters) > 0 {
		replace[hardhat.ParamsFile] = h.Parameters
	}
	return projects.PackOptions{
		Replace: replace,
		Skip:    hardhatSkipped,
		Extra: func(add func(h *tar.Header, body io.Reader) error) error {
			return add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "node_modules", Linkname: npmdeps.Mount + "/node_modules", Mode: 0o777}, nil)
		},
	}
}

// installDeps installs the project's dependencies, once per lockfile on this host,
// and makes their volume ready on the engine.
func (j *job) installDeps(ctx context.Context) error {
	h := j.proj.plan.Hardhat
	j.depsKey = j.d.NPM.Key(h.PackageJSON, h.Lockfile)
	return j.step(ctx, "preparing dependencies", j.d.cfg.Steps.Image, func(ctx context.Context) error {
		out := newOutput(j.rep, j.d.Redact)
		installed, err := j.d.NPM.Ensure(ctx, j.depsKey, h.PackageJSON, h.Lockfile, j.img.ID, j.rep.Step, out)
		out.Flush()
		j.r.Cache.DepsHit = !installed
		if err != nil {
			return err
		}
		// The job's container mounts the compiler store before the job knows which
		// compilers it needs (the config says, once it ran there): the volume must be
		// the store's, made with its labels, not one the engine makes on the fly.
		return j.d.Compilers.Ensure(ctx, nil, j.rep.Step)
	})
}

// probeCompilers runs the project's config in the container to learn which compiler
// versions it names (its code: the user's time), then makes them ready.
func (j *job) probeCompilers(ctx context.Context) error {
	err := j.users.run(ctx, "reading the Hardhat config", func(ctx context.Context) error {
		// What the config prints is the user's to see, within the log's caps.
		out := newOutput(j.rep, j.d.Redact)
		code, err := j.box.exec(ctx, hardhat.ProbeCommand(), nil, out, out)
		if err != nil {
			return j.box.explain(ctx, err)
		}
		versions, perr := hardhat.ParseProbe(out.String())
		if perr != nil {
			return userErrorf("%v", perr)
		}
		if code != 0 {
			return userErrorf("the project's Hardhat config failed: %s", lastLine(out.String()))
		}
		j.solc = versions
		return nil
	})
	if err != nil {
		return err
	}
	return j.step(ctx, "preparing compilers", j.d.cfg.Steps.Image, func(ctx context.Context) error {
		known, err := j.d.Compilers.Known(ctx)
		if err != nil {
			return err
		}
		for _, v := range j.solc {
			if _, err := foundry.ResolveCompilers(nil, v, nil, known); err != nil {
				return userErrorf("%s", strings.Replace(err.Error(), "foundry.toml", "the Hardhat config", 1))
			}
		}
		j.rep.Output([]byte("deployer: compiling with solc " + strings.Join(j.solc, ", ") + "\n"))
		return j.d.Compilers.Ensure(ctx, j.solc, j.rep.Step)
	})
}

// restoreCompiled copies a compile cache hit's artifacts into the container: a
// Hardhat project's copy went in before its compilers, and so its key, were known.
func (j *job) restoreCompiled(ctx context.Context) error {
	if !j.r.Cache.CompileHit {
		return nil
	}
	return j.users.run(ctx, "restoring compiled artifacts", func(ctx context.Context) error {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := compilecache.Each(j.cached, compilecache.Hardhat, func(h *tar.Header, body io.Reader) error {
				hdr := &tar.Header{Typeflag: h.Typeflag, Name: "project/" + h.Name, Size: h.Size, Mode: 0o644 | int64(h.FileInfo().Mode()&0o111),
					ModTime: h.ModTime, Uid: 10001, Gid: 10001}
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if h.Typeflag == tar.TypeReg {
					_, err := io.CopyN(tw, body, h.Size)
					return err
				}
				return nil
			})
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		var out bytes.Buffer
		code, err := j.box.exec(ctx, []string{"tar", "-x", "--no-same-permissions", "-C", workDir}, pr, &out, &out)
		pr.Close()
		if err != nil {
			return j.box.explain(ctx, err)
		}
		if code != 0 {
			return fmt.Errorf("restore artifacts: tar exited %d: %s", code, lastLine(out.String()))
		}
		return nil
	})
}

// compileHardhat runs hardhat build. A failure is the user's, with the compiler's
// first error when there is one.
func (b *box) compileHardhat(ctx context.Context, out *output) error {
	code, err := b.forgeExec(ctx, hardhat.BuildCommand(), out)
	if err != nil {
		return err
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return userErrorf("%s", strings.Replace(msg, "compile error at ./", "compile error at ", 1))
		}
		return userErrorf("compilation failed: %s", orDefault(hardhat.FailureSummary(out.String()), "hardhat build exited "+fmt.Sprint(code)))
	}
	return nil
}

// deployHardhat deploys the Ignition module through the gateway and returns what
// Ignition says it deployed, named Module#Contract.
func (b *box) deployHardhat(ctx context.Context, h *jobs.HardhatPlan, chainID uint64, out *output) (foundry.Broadcast, error) {
	code, err := b.forgeExec(ctx, hardhat.DeployCommand(h.Module, len(h.Parameters) > 0), out)
	if err != nil {
		return foundry.Broadcast{}, err
	}
	if code != 0 {
		if msg := foundry.CompileError(out.String()); msg != "" {
			return foundry.Broadcast{}, userErrorf("%s", strings.Replace(msg, "compile error at ./", "compile error at ", 1))
		}
		return foundry.Broadcast{}, userErrorf("deployment failed: %s", orDefault(hardhat.FailureSummary(out.String()), "hardhat ignition exited "+fmt.Sprint(code)))
	}
	var file bytes.Buffer
	code, err = b.exec(ctx, []string{"cat", hardhat.DeployedAddresses(chainID)}, nil, &limitWriter{w: &file, n: 16 << 20}, io.Discard)
	if err != nil {
		return foundry.Broadcast{}, b.explain(ctx, err)
	}
	if code != 0 {
		return foundry.Broadcast{}, userErrorf("Ignition wrote no %s: the module deployed nothing", hardhat.DeployedAddresses(chainID))
	}
	deployed, err := hardhat.ParseDeployed(file.Bytes())
	if err != nil {
		return foundry.Broadcast{}, userErrorf("%v", err)
	}
	var made foundry.Broadcast
	for _, d := range deployed {
		made.Contracts = append(made.Contracts, foundry.Created{Name: d.Name, Address: d.Address})
	}
	return made, nil
}
