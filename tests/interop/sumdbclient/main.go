// Command sumdbclient verifies a sealtrail log (or any C2SP tlog-tiles log whose entries are
// carried in uint16-prefixed entry bundles) from its static read path alone, using the Go
// checksum database's transparency-log code, golang.org/x/mod/sumdb/tlog and sumdb/note, as an
// independent implementation.
//
// Usage:
//
//	sumdbclient -url http://127.0.0.1:8080 -vkey NAME+ID+KEY [-origin ORIGIN] [-max-entries N] [OLD_CHECKPOINT_FILE ...]
//	sumdbclient -evidence DIR -vkey NAME+ID+KEY [-origin ORIGIN]
//
// It fetches /checkpoint and opens it with note.Open and the verifier key; parses the checkpoint
// body strictly (origin, canonical decimal size, canonical base64 of a 32-byte root, non-empty
// extension lines); recomputes the root with tlog.TreeHash over a tlog.TileHashReader reading
// /tile/<L>/<N>[.p/<W>]; reads every entry bundle /tile/entries/<N>[.p/<W>] (or an evenly spread
// sample of whole bundles when the log has more than -max-entries entries), hashes every entry
// with tlog.RecordHash and checks it with tlog.ProveRecord and tlog.CheckRecord against the
// checkpoint; and, for each older checkpoint given, opens it the same way, recomputes its root
// from the tiles of its own (older) tree size, and checks tlog.ProveTree and tlog.CheckTree from it
// to the current checkpoint.
//
// Nothing read through the TileHashReader is trusted on its own: the tree hash is compared with
// the signed root, and every proof goes through CheckRecord or CheckTree against a signed root.
// This matters: x/mod 0.7.0's tileHashReader authenticates a non-root tile against its parent
// only from position len(stx) of its tile list, the number of root hashes rather than of root
// tiles, so when several root hashes share a tile (size 1300: four hashes in two tiles) the first
// tiles fetched for the requested indexes are returned unauthenticated.
//
// It prints a JSON summary on standard output and exits 0 when everything verified, 1 when
// something did not (the summary's "stage" and "error", repeated on standard error, say what), and
// 2 on bad usage.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is the only tile height tlog-tiles defines.
const tileHeight = 8

// tileWidth is the number of hashes in a full tile, and of entries in a full bundle.
const tileWidth = 1 << tileHeight

// maxTileBytes bounds any response body we read: a full bundle of 256 entries of at most
// 65535 bytes each, plus their length prefixes.
const maxTileBytes = tileWidth * (2 + 65535)

// emptyRoot is the RFC 6962 root of the empty tree, SHA-256 of nothing. Go's tlog defines the
// empty tree's hash as all zeros instead, so size-0 checkpoints are checked against this directly.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// checkpoint is a verified C2SP tlog-checkpoint.
type checkpoint struct {
	origin     string
	tree       tlog.Tree
	extensions []string
}

// failure is a verification failure at a named stage.
type failure struct {
	stage string
	err   error
}

func (f *failure) Error() string { return f.stage + ": " + f.err.Error() }

func fail(stage string, format string, args ...interface{}) error {
	return &failure{stage: stage, err: fmt.Errorf(format, args...)}
}

func wrap(stage string, err error) error {
	return &failure{stage: stage, err: err}
}

// fetcher reads the log's static resources over HTTP and counts what it fetched.
type fetcher struct {
	base    string
	client  *http.Client
	fetches int
	// cache holds raw tile bodies by path. They are never trusted because of it: every
	// ReadHashes call of tlog's tileHashReader authenticates the tiles it is given against the
	// tree hash, cached or not.
	cache map[string][]byte
}

func (f *fetcher) get(path string, contentType string) ([]byte, error) {
	if b, ok := f.cache[path]; ok {
		return b, nil
	}
	f.fetches++
	resp, err := f.client.Get(f.base + "/" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /%s: HTTP %d: %.200s", path, resp.StatusCode, body)
	}
	if len(body) > maxTileBytes {
		return nil, fmt.Errorf("GET /%s: body larger than %d bytes", path, maxTileBytes)
	}
	if got := resp.Header.Get("Content-Type"); got != contentType {
		return nil, fmt.Errorf("GET /%s: Content-Type %q, want %q", path, got, contentType)
	}
	if path != "checkpoint" {
		f.cache[path] = body
	}
	return body, nil
}

// c2spPath maps a Go sumdb tile to its C2SP tlog-tiles path. Go names hash tiles
// tile/8/<L>/<N>[.p/<W>] and data tiles tile/8/data/<N>[.p/<W>]; C2SP drops the height and names
// data tiles (entry bundles) tile/entries/<N>[.p/<W>]. The N and W encodings are Go's own.
func c2spPath(t tlog.Tile) (string, error) {
	if t.H != tileHeight {
		return "", fmt.Errorf("tile height %d, want %d", t.H, tileHeight)
	}
	p := t.Path()
	if back, err := tlog.ParseTilePath(p); err != nil || back != t {
		return "", fmt.Errorf("tile %+v has no canonical path (%q)", t, p)
	}
	rest := strings.TrimPrefix(p, "tile/8/")
	if rest == p {
		return "", fmt.Errorf("unexpected Go tile path %q", p)
	}
	if t.L == -1 {
		data := strings.TrimPrefix(rest, "data/")
		if data == rest {
			return "", fmt.Errorf("unexpected Go data tile path %q", p)
		}
		return "tile/entries/" + data, nil
	}
	return "tile/" + rest, nil
}

// tileReader is a tlog.TileReader over the log's C2SP hash tiles.
type tileReader struct{ f *fetcher }

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("asked for data tile %+v as a hash tile", t)
		}
		path, err := c2spPath(t)
		if err != nil {
			return nil, err
		}
		b, err := r.f.get(path, "application/octet-stream")
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("/%s is %d bytes, want %d", path, len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles is called once tlog has authenticated the tiles; there is no persistent cache.
func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// parseCheckpoint opens a signed checkpoint with the verifier and parses its body strictly.
func parseCheckpoint(msg []byte, verifiers note.Verifiers, key note.Verifier, origin string) (checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return checkpoint{}, fmt.Errorf("note.Open: %v", err)
	}
	signed := false
	for _, s := range n.Sigs {
		if s.Name == key.Name() && s.Hash == key.KeyHash() {
			signed = true
		}
	}
	if !signed {
		return checkpoint{}, errors.New("no verified signature from the log key")
	}
	body := strings.TrimSuffix(n.Text, "\n")
	if body == n.Text {
		return checkpoint{}, errors.New("checkpoint text does not end in a newline")
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return checkpoint{}, fmt.Errorf("checkpoint has %d lines, want at least 3", len(lines))
	}
	if lines[0] != origin {
		return checkpoint{}, fmt.Errorf("origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("tree size %q is not a canonical decimal", lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return checkpoint{}, fmt.Errorf("root %q is not canonical base64 of %d bytes", lines[2], tlog.HashSize)
	}
	for _, e := range lines[3:] {
		if e == "" {
			return checkpoint{}, errors.New("empty extension line")
		}
	}
	var h tlog.Hash
	copy(h[:], root)
	return checkpoint{origin: lines[0], tree: tlog.Tree{N: size, Hash: h}, extensions: lines[3:]}, nil
}

// parseBundle splits a C2SP entry bundle (uint16 big-endian length, then the entry, repeated)
// into exactly want entries, with nothing left over.
func parseBundle(b []byte, want int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("truncated length prefix after %d entries", len(out))
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return nil, fmt.Errorf("entry %d claims %d bytes, %d left", len(out), n, len(b))
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(out) != want {
		return nil, fmt.Errorf("bundle holds %d entries, want %d", len(out), want)
	}
	return out, nil
}

// bundlesToCheck lists the entry bundles to verify: all of them when the log holds at most
// maxEntries entries (or maxEntries is 0), otherwise maxEntries/256 (at least 2) whole bundles
// spread evenly from the first to the last.
func bundlesToCheck(size int64, maxEntries int64) (bundles []int64, sampled bool) {
	count := (size + tileWidth - 1) / tileWidth
	if maxEntries <= 0 || size <= maxEntries {
		for n := int64(0); n < count; n++ {
			bundles = append(bundles, n)
		}
		return bundles, false
	}
	k := maxEntries / tileWidth
	if k < 2 {
		k = 2
	}
	if k > count {
		k = count
	}
	last := int64(-1)
	for i := int64(0); i < k; i++ {
		n := i * (count - 1) / (k - 1)
		if n != last {
			bundles = append(bundles, n)
			last = n
		}
	}
	return bundles, true
}

type oldResult struct {
	File     string `json:"file"`
	TreeSize int64  `json:"tree_size"`
	RootHash string `json:"root_hash"`
	ProofLen int    `json:"consistency_proof_hashes"`
}

type summary struct {
	OK                 bool        `json:"ok"`
	Stage              string      `json:"stage,omitempty"`
	Error              string      `json:"error,omitempty"`
	URL                string      `json:"url"`
	Origin             string      `json:"origin,omitempty"`
	TreeSize           int64       `json:"tree_size"`
	RootHash           string      `json:"root_hash,omitempty"`
	Extensions         int         `json:"extension_lines"`
	EntriesChecked     int64       `json:"entries_checked"`
	BundlesChecked     int         `json:"bundles_checked"`
	Sampled            bool        `json:"sampled"`
	LeafHashesSHA256   string      `json:"leaf_hashes_sha256,omitempty"`
	ConsistencyChecked []oldResult `json:"consistency_checked"`
	HTTPFetches        int         `json:"http_fetches"`
	Millis             int64       `json:"elapsed_ms"`
}

func main() {
	base := flag.String("url", "", "base URL of the log (its tlog-tiles prefix)")
	vkey := flag.String("vkey", "", "the log's note verifier key, NAME+ID+KEY")
	origin := flag.String("origin", "", "expected checkpoint origin (default: the key name)")
	maxEntries := flag.Int64("max-entries", 100000, "verify every entry up to this tree size, else a sample of whole bundles (0: always all)")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of each HTTP request")
	evidenceDir := flag.String("evidence", "", "check this extracted evidence package instead of a live log (see evidence.go)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s -url URL -vkey VKEY [flags] [OLD_CHECKPOINT_FILE ...]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if *evidenceDir != "" && *vkey != "" {
		var s evidenceSummary
		err := runEvidence(*evidenceDir, *vkey, *origin, &s)
		finish(err, &s, &s.OK, &s.Stage, &s.Error)
	}
	if *base == "" || *vkey == "" {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	s := summary{URL: *base, ConsistencyChecked: []oldResult{}}
	f := &fetcher{
		base:   strings.TrimSuffix(*base, "/"),
		client: &http.Client{Timeout: *timeout},
		cache:  map[string][]byte{},
	}
	err := run(f, *vkey, *origin, *maxEntries, flag.Args(), &s)
	s.HTTPFetches = f.fetches
	s.Millis = time.Since(start).Milliseconds()
	finish(err, &s, &s.OK, &s.Stage, &s.Error)
}

// finish records the outcome of a run in its summary (ok, or the failing stage and its error,
// repeated on standard error), prints the summary as JSON and exits: 0 verified, 1 failed.
func finish(err error, summary interface{}, ok *bool, stage, msg *string) {
	code := 0
	if err != nil {
		var fl *failure
		if !errors.As(err, &fl) {
			fl = &failure{stage: "internal", err: err}
		}
		*stage, *msg = fl.stage, fl.err.Error()
		fmt.Fprintf(os.Stderr, "sumdbclient: FAILED at %s: %v\n", fl.stage, fl.err)
		code = 1
	} else {
		*ok = true
	}
	out, _ := json.MarshalIndent(summary, "", "  ")
	fmt.Println(string(out))
	os.Exit(code)
}

// openKey parses the log's verifier key; the origin defaults to the key's name.
func openKey(vkey, origin string) (note.Verifier, string, note.Verifiers, error) {
	key, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", nil, fail("vkey", "note.NewVerifier: %v", err)
	}
	if origin == "" {
		origin = key.Name()
	}
	return key, origin, note.VerifierList(key), nil
}

func run(f *fetcher, vkey, origin string, maxEntries int64, oldFiles []string, s *summary) error {
	key, origin, verifiers, err := openKey(vkey, origin)
	if err != nil {
		return err
	}

	// Older checkpoints first: they are what the client already trusts.
	type old struct {
		file string
		cp   checkpoint
	}
	var olds []old
	for _, file := range oldFiles {
		msg, err := os.ReadFile(file)
		if err != nil {
			return fail("old-checkpoint", "%s: %v", file, err)
		}
		cp, err := parseCheckpoint(msg, verifiers, key, origin)
		if err != nil {
			return fail("old-checkpoint", "%s: %v", file, err)
		}
		olds = append(olds, old{file, cp})
	}

	// The current checkpoint.
	msg, err := f.get("checkpoint", "text/plain; charset=utf-8")
	if err != nil {
		return wrap("checkpoint", err)
	}
	cp, err := parseCheckpoint(msg, verifiers, key, origin)
	if err != nil {
		return wrap("checkpoint", err)
	}
	tree := cp.tree
	s.Origin, s.TreeSize = cp.origin, tree.N
	s.RootHash = base64.StdEncoding.EncodeToString(tree.Hash[:])
	s.Extensions = len(cp.extensions)
	reader := tlog.TileHashReader(tree, tileReader{f})

	// The root, recomputed from the hash tiles.
	if tree.N == 0 {
		if tree.Hash != emptyRoot {
			return fail("tree-hash", "size-0 checkpoint root is %v, want the empty-tree hash", tree.Hash)
		}
	} else {
		th, err := tlog.TreeHash(tree.N, reader)
		if err != nil {
			return fail("tree-hash", "tlog.TreeHash(%d): %v", tree.N, err)
		}
		if th != tree.Hash {
			return fail("tree-hash", "tlog.TreeHash(%d) = %v, checkpoint says %v", tree.N, th, tree.Hash)
		}
	}

	// Every entry (or a sample of bundles), hashed and proved into the checkpoint.
	bundles, sampled := bundlesToCheck(tree.N, maxEntries)
	s.Sampled = sampled
	digest := sha256.New()
	for _, n := range bundles {
		w := tileWidth
		if rest := tree.N - n*tileWidth; rest < tileWidth {
			w = int(rest)
		}
		path, err := c2spPath(tlog.Tile{H: tileHeight, L: -1, N: n, W: w})
		if err != nil {
			return wrap("entry-bundle", err)
		}
		b, err := f.get(path, "application/octet-stream")
		if err != nil {
			return wrap("entry-bundle", err)
		}
		entries, err := parseBundle(b, w)
		if err != nil {
			return fail("entry-bundle", "/%s: %v", path, err)
		}
		for i, e := range entries {
			idx := n*tileWidth + int64(i)
			h := tlog.RecordHash(e)
			p, err := tlog.ProveRecord(tree.N, idx, reader)
			if err != nil {
				return fail("inclusion", "entry %d: tlog.ProveRecord: %v", idx, err)
			}
			if err := tlog.CheckRecord(p, tree.N, tree.Hash, idx, h); err != nil {
				return fail("inclusion", "entry %d (record hash %v): tlog.CheckRecord: %v", idx, h, err)
			}
			digest.Write(h[:])
			s.EntriesChecked++
		}
		s.BundlesChecked++
	}
	if !sampled {
		s.LeafHashesSHA256 = hex.EncodeToString(digest.Sum(nil))
	}

	// Consistency from every older checkpoint to the current one.
	for _, o := range olds {
		ot := o.cp.tree
		if ot.N > tree.N {
			return fail("consistency", "%s: older checkpoint has size %d, the log now says %d (rollback)", o.file, ot.N, tree.N)
		}
		res := oldResult{File: o.file, TreeSize: ot.N, RootHash: base64.StdEncoding.EncodeToString(ot.Hash[:])}
		if ot.N == 0 {
			// tlog.CheckTree rejects size 0; the empty tree is a prefix of every tree, and its
			// root is fixed.
			if ot.Hash != emptyRoot {
				return fail("consistency", "%s: size-0 checkpoint root is %v, want the empty-tree hash", o.file, ot.Hash)
			}
			s.ConsistencyChecked = append(s.ConsistencyChecked, res)
			continue
		}
		// The older tree's root from the tiles the log still serves for that size (its partial
		// tiles are prefixes of today's).
		oldReader := tlog.TileHashReader(ot, tileReader{f})
		th, err := tlog.TreeHash(ot.N, oldReader)
		if err != nil {
			return fail("old-tree-hash", "%s: tlog.TreeHash(%d): %v", o.file, ot.N, err)
		}
		if th != ot.Hash {
			return fail("old-tree-hash", "%s: tlog.TreeHash(%d) = %v, checkpoint says %v", o.file, ot.N, th, ot.Hash)
		}
		p, err := tlog.ProveTree(tree.N, ot.N, reader)
		if err != nil {
			return fail("consistency", "%s: tlog.ProveTree(%d, %d): %v", o.file, tree.N, ot.N, err)
		}
		if err := tlog.CheckTree(p, tree.N, tree.Hash, ot.N, ot.Hash); err != nil {
			return fail("consistency", "%s: tlog.CheckTree(%d -> %d): %v", o.file, ot.N, tree.N, err)
		}
		res.ProofLen = len(p)
		s.ConsistencyChecked = append(s.ConsistencyChecked, res)
	}
	return nil
}
