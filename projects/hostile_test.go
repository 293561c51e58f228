package projects

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// rawHeader is one tar header block, written by hand: archive/tar's Writer will not
// write extended headers one after another, which is what a hostile archive does.
func rawHeader(name string, typ byte, size int64) []byte {
	b := make([]byte, blockSize)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	if typ == 'L' || typ == 'K' {
		copy(b[257:265], "ustar  \x00") // GNU's magic
	} else {
		copy(b[257:265], "ustar\x0000")
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padded appends data to hdr, padded to a whole block.
func padded(hdr, data []byte) []byte {
	out := append(append([]byte{}, hdr...), data...)
	if r := len(data) % blockSize; r != 0 {
		out = append(out, make([]byte, blockSize-r)...)
	}
	return out
}

// extHeader is an extended header of typ ('x' PAX, 'L' GNU long name, 'K' GNU long
// link name) holding size bytes, the most Go's reader takes for one (1 MiB).
func extHeader(typ byte, size int) []byte {
	var data []byte
	if typ == 'x' {
		// One record, "<length> comment=<value>\n", the length counting itself.
		const key = " comment="
		digits := len(fmt.Sprint(size))
		data = []byte(fmt.Sprint(size) + key + strings.Repeat("a", size-digits-len(key)-1) + "\n")
	} else {
		data = bytes.Repeat([]byte("a"), size)
	}
	return padded(rawHeader("././@LongLink", typ, int64(len(data))), data)
}

// members gzips each part once and repeats its gzip member: gzip readers read
// concatenated members as one stream, so a hostile archive that inflates to gigabytes
// takes megabytes and milliseconds to build.
func members(t testing.TB, parts ...[]byte) func(n int) []byte {
	t.Helper()
	zipped := make([][]byte, len(parts))
	for i, p := range parts {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(p)
		zw.Close()
		zipped[i] = buf.Bytes()
	}
	return func(n int) []byte {
		var out []byte
		for i := 0; i < n; i++ {
			out = append(out, zipped[i%len(zipped)]...)
		}
		return out
	}
}

// tarEnd is a small regular file and the end of the archive.
func tarEnd() []byte {
	return append(padded(rawHeader("foundry.toml", '0', 3), []byte("x=1")), make([]byte, 2*blockSize)...)
}

// headerFlood is the archive of the issue: n extended headers of 1 MiB, of the types
// given in turn, before one small file. It inflates to n MiB.
func headerFlood(t testing.TB, n int, types ...byte) []byte {
	t.Helper()
	var parts [][]byte
	for _, typ := range types {
		parts = append(parts, extHeader(typ, 1<<20))
	}
	flood := members(t, parts...)(n)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tarEnd())
	zw.Close()
	return append(flood, buf.Bytes()...)
}

// Go's tar reader takes any number of extended headers in one call to Next: a 4 MB
// upload of 4000 of them would make every read of it inflate and parse 4 GiB. The walk
// stops after one entry's allowance of headers, and says why.
func TestHeaderFloodIsRefusedEarly(t *testing.T) {
	for _, tt := range []struct {
		name  string
		types []byte
	}{
		{"PAX", []byte{'x'}},
		{"GNU long names", []byte{'L'}},
		{"GNU long link names", []byte{'K'}},
		{"mixed", []byte{'x', 'L', 'K'}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			archive := headerFlood(t, 4000, tt.types...)
			t.Logf("archive: %d bytes, inflating to %d MiB", len(archive), 4000)
			read, err := walkArchive(archive, DefaultLimits, func(*tar.Header, string, io.Reader) error {
				t.Fatal("an entry was accepted")
				return nil
			})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "tar headers") {
				t.Fatalf("err = %v, want ErrInvalid naming the tar headers", err)
			}
			t.Logf("refused after %d decompressed bytes: %v", read, err)
			if read > maxHeaderBytes {
				t.Errorf("read %d decompressed bytes before refusing, want at most %d", read, maxHeaderBytes)
			}
			// The API and the worker read archives through these.
			if _, err := InspectArchive(archive, DefaultLimits); !errors.Is(err, ErrInvalid) {
				t.Errorf("InspectArchive: err = %v", err)
			}
			_, dir := unpackSandbox(t)
			if err := Unpack(archive, dir, DefaultLimits); !errors.Is(err, ErrInvalid) {
				t.Errorf("Unpack: err = %v", err)
			}
		})
	}
}

// A few extended headers are what real archives hold (long names, times, extended
// attributes): they pass.
func TestModestExtendedHeadersPass(t *testing.T) {
	long := strings.Repeat("d/", 200) + "A.sol"
	entries := append(padded(rawHeader("././@LongLink", 'L', int64(len(long)+1)), []byte(long+"\x00")),
		padded(rawHeader("ignored", '0', 2), []byte("ok"))...)
	archive := gz(t, append(append(extHeader('x', 8<<10), entries...), tarEnd()...))
	l, err := InspectArchive(archive, DefaultLimits)
	if err != nil {
		t.Fatalf("InspectArchive: %v", err)
	}
	if !l.Has(long) || !l.Has("foundry.toml") {
		t.Errorf("files %v", sortedKeys(l.Files))
	}
}

// A gzip bomb, a file of zeros far past the limit, is refused from its header,
// before its data is inflated, wherever it is in the project, kept or not.
func TestGzipBombIsRefusedFromItsHeader(t *testing.T) {
	const size = 16 << 30
	zeros := members(t, make([]byte, 1<<20))(64) // the first 64 MiB of its data
	for _, name := range []string{"src/Zeros.sol", ".git/objects/pack/zeros", "out/zeros.json", ".env"} {
		t.Run(name, func(t *testing.T) {
			head := gz(t, rawHeader(name, '0', size))
			archive := append(head, zeros...)
			read, err := walkArchive(archive, DefaultLimits, func(*tar.Header, string, io.Reader) error { return nil })
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bytes unpacked") {
				t.Fatalf("err = %v, want ErrInvalid saying the project is too large", err)
			}
			if read > blockSize {
				t.Errorf("read %d decompressed bytes of a bomb, want only its header", read)
			}
		})
	}
}

// A bomb within the project's byte limit is a large project: the walk reads it, and
// never more than the archive's budget, whether the bound falls in headers or in the
// data of a file being unpacked.
func TestBudgetBoundsTheWholeArchive(t *testing.T) {
	lim := Limits{MaxEntries: 10, MaxBytes: 1 << 20}
	budget := archiveBudget(lim)
	// Headers within each entry's allowance that add up, then a file within the limit.
	var raw []byte
	for i := 0; i < 9; i++ {
		raw = append(raw, extHeader('x', 60<<10)...)
		raw = append(raw, rawHeader(fmt.Sprintf("d%d/", i), '5', 0)...)
	}
	raw = append(raw, padded(rawHeader("a", '0', 1<<20), make([]byte, 1<<20))...)
	raw = append(raw, make([]byte, 2*blockSize)...)
	archive := gz(t, raw)
	read, err := walkArchive(archive, lim, func(*tar.Header, string, io.Reader) error { return nil })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unpacks to more than") {
		t.Fatalf("err = %v, want the archive's budget named", err)
	}
	if read > budget {
		t.Errorf("read %d bytes, past the budget of %d", read, budget)
	}
	_, dir := unpackSandbox(t)
	if err := Unpack(archive, dir, lim); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unpacks to more than") {
		t.Errorf("Unpack: err = %v, want the archive's budget named", err)
	}
}
