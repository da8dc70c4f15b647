package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Problem is one reason a policy directory was refused, located for an editor.
type Problem struct {
	File   string // as the loader was given it: the directory joined with the file name
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Policy string // the policy's id, when the problem belongs to one policy
	Msg    string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Policy != "" {
		fmt.Fprintf(&b, "policy %q: ", p.Policy)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// LoadError lists every problem found in a policy directory; a directory with
// any problem is refused whole.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads every *.cedar file in dir (not its subdirectories; names starting
// with "." are skipped, as editors and Kubernetes ConfigMap mounts put
// bookkeeping there), validates each policy against the schema, and returns
// the set. Any problem refuses the whole directory with a *LoadError.
func Load(dir string) (*Set, error) {
	return load(os.DirFS(dir), dir)
}

// LoadFS is Load for a file system, such as StarterFS(); file names in
// problems are relative to it.
func LoadFS(fsys fs.FS) (*Set, error) {
	return load(fsys, "")
}

func load(fsys fs.FS, dir string) (*Set, error) {
	cs, err := compileSchema()
	if err != nil {
		return nil, err
	}
	files, err := readDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	return compileSet(cs, files)
}

// Validate reports whether dir would load, for `gatehouse policy validate`.
// Its error is a *LoadError when the files themselves are at fault.
func Validate(dir string) error {
	_, err := Load(dir)
	return err
}

// policyFile is one *.cedar file as read.
type policyFile struct {
	name    string // base name: what policy ids and PolicyInfo.File use
	display string // what problems name: the directory joined with name
	data    []byte
}

// dirContents is one read of a policy directory; hash tells a reload whether
// anything changed since the last read.
type dirContents struct {
	files []policyFile
	hash  [sha256.Size]byte
}

func readDir(fsys fs.FS, dir string) (dirContents, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		// The error from the fs.FS names ".", not the directory.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return dirContents{}, fmt.Errorf("policy directory %s: %w; create it and put .cedar policy files in it (`gatehouse up` writes the starter policies there on its first run), or point `policies:` in the config at your policy directory", dir, err)
		}
		return dirContents{}, fmt.Errorf("read policy directory %s: %w", dir, err)
	}
	var c dirContents
	h := sha256.New()
	for _, e := range entries { // fs.ReadDir sorts by name, so the hash is stable
		name := e.Name()
		if !strings.HasSuffix(name, ".cedar") || strings.HasPrefix(name, ".") {
			continue
		}
		// Stat follows symlinks, which is how ConfigMap mounts present files.
		info, err := fs.Stat(fsys, name)
		if err != nil {
			return dirContents{}, fmt.Errorf("read policy directory: %w", err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return dirContents{}, fmt.Errorf("read policy file: %w", err)
		}
		display := name
		if dir != "" {
			display = filepath.Join(dir, name)
		}
		c.files = append(c.files, policyFile{name: name, display: display, data: data})
		h.Write([]byte(name))
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(data))))
		h.Write(data)
	}
	h.Sum(c.hash[:0])
	return c, nil
}

func compileSet(cs *compiledSchema, c dirContents) (*Set, error) {
	var problems []Problem
	s := newSet(cs)
	firstSeen := map[string]Problem{} // policy id → where it was first defined
	for _, f := range c.files {
		list, err := cedar.NewPolicyListFromBytes(f.name, f.data)
		if err != nil {
			problems = append(problems, syntaxProblem(f.display, f.data, err))
			continue
		}
		generated := map[string]bool{}
		for _, p := range list {
			pos := p.Position()
			ann := map[string]string{}
			for k, v := range p.Annotations() {
				ann[string(k)] = string(v)
			}
			here := Problem{File: f.display, Line: pos.Line, Column: pos.Column}
			id, explicit := ann["id"]
			if !explicit {
				id = f.name + ":" + strconv.Itoa(pos.Line)
				if generated[id] { // two policies on one line
					id += ":" + strconv.Itoa(pos.Column)
				}
				generated[id] = true
			}
			here.Policy = id
			if explicit && strings.TrimSpace(id) == "" {
				here.Msg = `@id is empty`
				problems = append(problems, here)
				continue
			}
			if first, dup := firstSeen[id]; dup {
				here.Msg = fmt.Sprintf("duplicate policy id, first defined at %s:%d:%d", first.File, first.Line, first.Column)
				problems = append(problems, here)
				continue
			}
			firstSeen[id] = here
			if err := cs.validator.Policy("", (*xast.Policy)(p.AST())); err != nil {
				for _, msg := range validationMessages(err) {
					pr := here
					pr.Msg = msg
					problems = append(problems, pr)
				}
				continue
			}
			s.add(PolicyInfo{
				ID:          id,
				Effect:      effectOf(p),
				File:        f.name,
				Line:        pos.Line,
				Column:      pos.Column,
				Annotations: ann,
			}, p)
		}
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	s.files = len(c.files)
	s.buildIndex()
	return s, nil
}

func effectOf(p *cedar.Policy) Effect {
	if p.Effect() == cedar.Forbid {
		return Forbid
	}
	return Permit
}

// validationMessages turns the validator's joined errors into sorted lines,
// folding the copies it makes of one mistake for each action a policy
// covers ("... for Action::"sql:select" not found", once per sql:* action).
func validationMessages(err error) []string {
	var msgs []string
	others := map[string]int{} // folded message → how many more actions
	first := map[string]string{}
	for _, e := range flatten(err) {
		msg := e.Error()
		key := actionRef.ReplaceAllString(msg, "Action::…")
		if _, seen := first[key]; seen {
			others[key]++
			if msg < first[key] {
				first[key] = msg
			}
			continue
		}
		first[key] = msg
		msgs = append(msgs, key)
	}
	for i, key := range msgs {
		msgs[i] = first[key]
		if n := others[key]; n > 0 {
			msgs[i] += fmt.Sprintf(" (and for %d other actions)", n)
		}
	}
	slices.Sort(msgs)
	return msgs
}

var actionRef = regexp.MustCompile(`Action::"[^"]*"`)

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// cedar-go's parser reports positions only inside its message text, as
// "<input>:LINE:COL", and phrases a missing token as "exact got X want Y".
var (
	inputPos = regexp.MustCompile(`<input>:(\d+):(\d+):?\s*`)
	// The quoted token after the position is the one after the mistake, so
	// it is dropped; the "got" in the message names the right one.
	parsePfx  = regexp.MustCompile(`^(parser error: )?(parse error at )?("(?:[^"\\]|\\.)*": )?`)
	exactWant = regexp.MustCompile(`exact got (.*) want (.*)$`)
)

func syntaxProblem(file string, src []byte, err error) Problem {
	msg := err.Error()
	p := Problem{File: file}
	if m := inputPos.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Column, _ = strconv.Atoi(m[2])
		msg = inputPos.ReplaceAllString(msg, "")
	}
	msg = parsePfx.ReplaceAllString(msg, "")
	if m := exactWant.FindStringSubmatch(msg); m != nil {
		got, want := m[1], m[2]
		found := strconv.Quote(got)
		if got == "" {
			found = "end of file"
		} else if p.Line > 0 {
			// The parser has already stepped past the token it names, so its
			// position is the next token's: point back at the named one.
			if i := bytes.LastIndex(src[:offsetOf(src, p.Line, p.Column)], []byte(got)); i >= 0 {
				p.Line, p.Column = lineColOf(src, i)
			}
		}
		msg = exactWant.ReplaceAllLiteralString(msg, fmt.Sprintf("expected %q, found %s", want, found))
	}
	p.Msg = "syntax error: " + msg
	return p
}

// offsetOf is the byte offset of a 1-based line and column, counted in runes
// as cedar-go's scanner counts them.
func offsetOf(src []byte, line, col int) int {
	l, c := 1, 1
	for i, r := range string(src) {
		if l == line && c == col {
			return i
		}
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	return len(src)
}

func lineColOf(src []byte, off int) (line, col int) {
	line, col = 1, 1
	for _, r := range string(src[:off]) {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

var _ error = (*LoadError)(nil)
