package imagecache

import (
	"archive/tar"
	"io"
)

// tarOf writes a tar stream of the files.
func tarOf(w io.Writer, files map[string]string) error {
	tw := tar.NewWriter(w)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return err
		}
	}
	return tw.Close()
}
