package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/deployer-dev/deployer/engine"
)

// InspectImage finds an image by reference or id.
func (e *Engine) InspectImage(ctx context.Context, ref string) (engine.Image, error) {
	r, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return engine.Image{}, e.wrap(err, "inspect image "+ref)
	}
	img := engine.Image{ID: r.ID, Tags: r.RepoTags, Size: r.Size}
	if r.Config != nil {
		img.Labels = r.Config.Labels
	}
	img.Created, _ = time.Parse(time.RFC3339Nano, r.Created)
	return img, nil
}

// stepRE finds the image a build step made (" ---> 1a2b3c4d5e6f").
var stepRE = regexp.MustCompile(`^ ---> ([0-9a-f]{12})$`)

// buildTail is how many lines of build output a failure quotes.
const buildTail = 15

// Build builds an image with no network, and returns its id. A failed build's error
// quotes the build's last lines.
func (e *Engine) Build(ctx context.Context, spec engine.BuildSpec) (string, error) {
	args := make(map[string]*string, len(spec.BuildArgs))
	for k, v := range spec.BuildArgs {
		args[k] = &v
	}
	resp, err := e.cli.ImageBuild(ctx, spec.Context, build.ImageBuildOptions{
		// Our image cache is the only one: a build after it was cleared really builds,
		// and every layer belongs to the labelled image that removing it prunes.
		NoCache:     true,
		Tags:        spec.Tags,
		BuildArgs:   args,
		Labels:      spec.Labels,
		NetworkMode: "none",
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
	})
	if err != nil {
		return "", e.wrap(err, "build image")
	}
	defer resp.Body.Close()
	var tail, steps []string
	var id string
	// A failed build leaves the images of the steps that succeeded, untagged and
	// carrying the base image's labels: they are this build's, and go with it.
	defer func() {
		if id != "" {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		// The first step's image is the FROM image (our base): never removed, nor is
		// any image with a tag.
		for i := len(steps) - 1; i >= 1; i-- {
			img, err := e.cli.ImageInspect(rctx, steps[i])
			if err != nil || len(img.RepoTags) > 0 {
				continue
			}
			_, _ = e.cli.ImageRemove(rctx, img.ID, image.RemoveOptions{PruneChildren: true})
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Aux struct {
				ID string `json:"ID"`
			} `json:"aux"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(msg.Stream, "\n"), "\n") {
			if strings.TrimSpace(line) != "" {
				tail = append(tail, line)
			}
			if m := stepRE.FindStringSubmatch(line); m != nil {
				steps = append(steps, m[1])
			}
		}
		if len(tail) > buildTail {
			tail = tail[len(tail)-buildTail:]
		}
		if msg.Aux.ID != "" {
			id = msg.Aux.ID
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build image: %s\n%s", msg.Error, strings.Join(tail, "\n"))
		}
	}
	if err := sc.Err(); err != nil {
		return "", e.wrap(err, "build image")
	}
	if id == "" && len(spec.Tags) > 0 {
		img, err := e.InspectImage(ctx, spec.Tags[0])
		if err != nil {
			return "", fmt.Errorf("build image: no image after the build: %w", err)
		}
		id = img.ID
	}
	if id == "" {
		return "", errors.New("build image: the engine reported no image id")
	}
	return id, nil
}

// Untag removes a tag from one of our images. An image a container uses keeps
// existing without the tag (the engine never deletes it from under a container); an
// image nothing uses is removed with its last tag.
func (e *Engine) Untag(ctx context.Context, tag string) error {
	img, err := e.InspectImage(ctx, tag)
	if err != nil {
		return err
	}
	if !e.Ours(img.Labels) {
		return fmt.Errorf("untag %s: %w", tag, engine.ErrNotOurs)
	}
	_, err = e.cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return e.wrap(err, "untag "+tag)
}

// ListImages lists this installation's images of the role.
func (e *Engine) ListImages(ctx context.Context, role string) ([]engine.Image, error) {
	f := filters.NewArgs(
		filters.Arg("label", engine.LabelManagedBy+"="+engine.ManagedByValue),
		filters.Arg("label", engine.LabelInstance+"="+e.instance),
		filters.Arg("label", engine.LabelRole+"="+role),
	)
	list, err := e.cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		return nil, e.wrap(err, "list images")
	}
	out := make([]engine.Image, 0, len(list))
	for _, s := range list {
		out = append(out, engine.Image{ID: s.ID, Tags: s.RepoTags, Labels: s.Labels, Size: s.Size, Created: time.Unix(s.Created, 0)})
	}
	return out, nil
}

// RemoveImage removes one of our images with all its tags. It refuses an image
// without our labels, and one any container (running or not) uses.
func (e *Engine) RemoveImage(ctx context.Context, id string) error {
	img, err := e.InspectImage(ctx, id)
	if err != nil {
		return err
	}
	if !e.Ours(img.Labels) {
		return fmt.Errorf("remove image %s: %w", id, engine.ErrNotOurs)
	}
	users, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("ancestor", img.ID))})
	if err != nil {
		return e.wrap(err, "remove image "+id)
	}
	if len(users) > 0 {
		return fmt.Errorf("remove image %s: %w (%s)", id, engine.ErrInUse, users[0].ID[:12])
	}
	// Untag one tag at a time, without force: the engine still refuses if a
	// container appeared meanwhile.
	for _, tag := range img.Tags {
		if _, err := e.cli.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return e.wrap(err, "remove image "+tag)
		}
	}
	_, err = e.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{PruneChildren: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return e.wrap(err, "remove image "+id)
}
