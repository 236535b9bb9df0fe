package main

// The -evidence mode: checks an extracted sealtrail evidence package (spec/docs/evidence-package.md)
// with golang.org/x/mod/sumdb/note and sumdb/tlog, independently of the Rust verifier:
//
//   - manifest.sig opens with note.Open under the log key, and names the SHA-256 of manifest.json;
//   - every file the manifest lists has that SHA-256, and no other file is there;
//   - checkpoint (and consistency/checkpoint, when present) open with note.Open and parse strictly;
//     tlog.CheckTree checks consistency/proof between them;
//   - for every line of records.jsonl, tlog.RecordHash of its envelope bytes is checked with
//     tlog.CheckRecord against the root of the checkpoint its proofs/<index>.tlog-proof carries,
//     which must be one of the package's checkpoints byte for byte.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type evidenceSummary struct {
	OK              bool   `json:"ok"`
	Stage           string `json:"stage,omitempty"`
	Error           string `json:"error,omitempty"`
	TreeSize        int64  `json:"tree_size"`
	LaterTreeSize   int64  `json:"later_tree_size"`
	Files           int    `json:"files_checked"`
	RecordsIncluded int    `json:"records_included"`
}

type manifest struct {
	Format string            `json:"format"`
	Origin string            `json:"origin"`
	Files  map[string]string `json:"files"`
}

// parseTlogProof reads a c2sp.org/tlog-proof@v1 text: its index, its proof hashes and the bytes
// of the checkpoint it carries.
func parseTlogProof(b []byte) (int64, tlog.RecordProof, []byte, error) {
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return 0, nil, nil, fmt.Errorf("no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 2 || lines[0] != "c2sp.org/tlog-proof@v1" {
		return 0, nil, nil, fmt.Errorf("not a c2sp.org/tlog-proof@v1")
	}
	lines = lines[1:]
	if strings.HasPrefix(lines[0], "extra ") {
		lines = lines[1:]
	}
	idx := strings.TrimPrefix(lines[0], "index ")
	index, err := strconv.ParseInt(idx, 10, 64)
	if err != nil || idx == lines[0] || strconv.FormatInt(index, 10) != idx {
		return 0, nil, nil, fmt.Errorf("bad index line %q", lines[0])
	}
	var proof tlog.RecordProof
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return 0, nil, nil, fmt.Errorf("bad proof hash %q", l)
		}
		var hash tlog.Hash
		copy(hash[:], h)
		proof = append(proof, hash)
	}
	return index, proof, cp, nil
}

func runEvidence(dir, vkey, origin string, s *evidenceSummary) error {
	key, origin, verifiers, err := openKey(vkey, origin)
	if err != nil {
		return err
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fail(name, "%v", err)
		}
		return b, nil
	}

	manifestBytes, err := read("manifest.json")
	if err != nil {
		return err
	}
	sig, err := read("manifest.sig")
	if err != nil {
		return err
	}
	n, err := note.Open(sig, verifiers)
	if err != nil {
		return fail("manifest.sig", "note.Open: %v", err)
	}
	sum := sha256.Sum256(manifestBytes)
	want := fmt.Sprintf("sealtrail-evidence/v1\nmanifest sha256:%s\norigin %s\n", hex.EncodeToString(sum[:]), origin)
	if n.Text != want {
		return fail("manifest.sig", "the signed statement %q is not the one of manifest.json", n.Text)
	}
	var m manifest
	if err := json.Unmarshal(manifestBytes, &m); err != nil {
		return fail("manifest.json", "%v", err)
	}
	if m.Format != "sealtrail-evidence/v1" || m.Origin != origin {
		return fail("manifest.json", "format %q origin %q", m.Format, m.Origin)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if rel == "manifest.json" || rel == "manifest.sig" {
			return nil
		}
		if _, ok := m.Files[rel]; !ok {
			return fail(rel, "not listed in manifest.json")
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, h := range m.Files {
		b, err := read(name)
		if err != nil {
			return err
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != h {
			return fail(name, "SHA-256 does not match manifest.json")
		}
		s.Files++
	}

	cpBytes, err := read("checkpoint")
	if err != nil {
		return err
	}
	cp, err := parseCheckpoint(cpBytes, verifiers, key, origin)
	if err != nil {
		return wrap("checkpoint", err)
	}
	s.TreeSize = cp.tree.N
	checkpoints := map[string]tlog.Tree{string(cpBytes): cp.tree}
	if laterBytes, err := os.ReadFile(filepath.Join(dir, "consistency", "checkpoint")); err == nil {
		later, err := parseCheckpoint(laterBytes, verifiers, key, origin)
		if err != nil {
			return wrap("consistency/checkpoint", err)
		}
		text, err := read("consistency/proof")
		if err != nil {
			return err
		}
		var proof tlog.TreeProof
		for _, l := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
			h, err := base64.StdEncoding.Strict().DecodeString(l)
			if err != nil || len(h) != tlog.HashSize {
				return fail("consistency/proof", "bad hash %q", l)
			}
			var hash tlog.Hash
			copy(hash[:], h)
			proof = append(proof, hash)
		}
		if err := tlog.CheckTree(proof, later.tree.N, later.tree.Hash, cp.tree.N, cp.tree.Hash); err != nil {
			return fail("consistency/proof", "tlog.CheckTree: %v", err)
		}
		s.LaterTreeSize = later.tree.N
		checkpoints[string(laterBytes)] = later.tree
	}

	records, err := read("records.jsonl")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(records))
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		var r struct {
			Index    *int64 `json:"index"`
			Envelope string `json:"envelope_base64"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Index == nil {
			return fail("records.jsonl", "bad line: %v", err)
		}
		env, err := base64.StdEncoding.Strict().DecodeString(r.Envelope)
		if err != nil {
			return fail("records.jsonl", "entry %d: envelope_base64: %v", *r.Index, err)
		}
		name := fmt.Sprintf("proofs/%d.tlog-proof", *r.Index)
		pb, err := read(name)
		if err != nil {
			return err
		}
		index, proof, pcp, err := parseTlogProof(pb)
		if err != nil {
			return fail(name, "%v", err)
		}
		tree, ok := checkpoints[string(pcp)]
		if !ok || index != *r.Index {
			return fail(name, "index %d or its checkpoint is not the package's", index)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(env)); err != nil {
			return fail(name, "tlog.CheckRecord: %v", err)
		}
		s.RecordsIncluded++
	}
	if err := sc.Err(); err != nil {
		return fail("records.jsonl", "%v", err)
	}
	return nil
}
