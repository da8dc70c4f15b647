package postgres

import (
	"crypto/rand"
	"encoding/hex"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
)

// stmtDef is one prepared statement as the gateway models it. Protocol
// statements (Parse) and SQL ones (PREPARE) share one namespace, as they
// do in PostgreSQL: Bind can use a PREPAREd name and EXECUTE a Parsed one.
type stmtDef struct {
	text string             // the exact text that runs: the Parse's query, or the PREPARE statement
	a    *sqlguard.Analysis // the analysis of text (a PREPARE is classed as the statement it prepares)
	// upstream is the name the upstream knows the statement by: the
	// client's, except for a held statement, which is prepared under a
	// private name the client never learns, so that nothing but an
	// approved Bind through the gateway can run it.
	upstream string
	held     bool
	// types are the parameter types the Parse declared (0: inferred),
	// which say what a binary parameter's bytes mean: approvals bind them.
	types []uint32
}

// A statement effect is what one statement does to the prepared
// statements once the upstream confirms it ran.
type stmtEffect struct {
	kind byte // 'p' prepare, 'd' deallocate, 'a' deallocate all
	name string
	def  *stmtDef
	stmt int // which statement of a simple query (counted by CommandComplete)
}

// nameLen is how much of a statement or portal name the server keeps:
// NAMEDATALEN-1 bytes. PostgreSQL keys both hash tables by that prefix
// (dynahash with HASH_STRINGS compares and hashes at most keysize-1
// bytes), so two names that share it are one name, and the model must key
// them the same way.
const nameLen = 63

// badName refuses a statement or portal name the server may key
// differently than the model: one longer than it keeps with non-ASCII
// bytes, which a server whose database is not in UTF-8 truncates after
// converting it to that encoding. In UTF-8 the server keys the first 63
// bytes, as the model does.
func (s *session) badName(name string) *denial {
	if len(name) > nameLen && !s.serverUTF8 && !sqlguard.Robust(name) {
		return s.deny("42622", "gatehouse: "+sqlguard.ErrLongName.Error())
	}
	return nil
}

// pgName is name as the server keys it.
func pgName(name string) string {
	if len(name) > nameLen {
		return name[:nameLen]
	}
	return name
}

// privateName returns a statement name for a held statement's upstream
// copy: random, so a client cannot guess it, and with a prefix the engine
// refuses in client messages.
func privateName() string {
	var b [12]byte
	rand.Read(b[:])
	return privatePrefix + hex.EncodeToString(b[:])
}

// privatePrefix starts every statement name the gateway makes up; clients
// may not use such names.
const privatePrefix = "gatehouse_"

// affects reports whether the response to x changes what name means.
func (x *expect) affects(name string) bool {
	switch x.kind {
	case 'P':
		return x.name == name
	case 'C':
		return x.describe == 'S' && x.name == name
	case 'Q', 'E':
		if x.kind == 'Q' && name == "" {
			return true // a simple query destroys the unnamed statement
		}
		for _, ef := range x.effects {
			if ef.kind == 'a' && name != "" || ef.name == name {
				return true
			}
		}
	}
	return false
}

// outcome is what name may mean for a message the frontend is about to
// forward, given what the upstream confirmed and what is still in flight.
type outcome struct {
	defs []*stmtDef // possible definitions; nil entries: the name may be undefined
}

func (o outcome) single() *stmtDef {
	if len(o.defs) == 1 {
		return o.defs[0]
	}
	return nil
}

// ambiguous: more than one outcome is possible (an earlier batch that
// changes the name has not been answered yet).
func (o outcome) ambiguous() bool { return len(o.defs) > 1 }

// undefined: the name cannot mean any statement.
func (o outcome) undefined() bool {
	return len(o.defs) == 0 || len(o.defs) == 1 && o.defs[0] == nil
}

func (o outcome) anyHeld() bool {
	return slices.ContainsFunc(o.defs, func(d *stmtDef) bool { return d != nil && d.held })
}

func (o *outcome) add(d *stmtDef) {
	if !slices.Contains(o.defs, d) {
		o.defs = append(o.defs, d)
	}
}

// resolve says what a statement name means for the next message the
// frontend forwards. Messages of the same batch (no Sync between) run only
// if everything before them succeeded, so a Parse in the same batch
// decides the name; a change in an earlier batch not yet answered may
// have failed, so both outcomes stay possible. Callers hold no lock.
func (s *session) resolve(name string) outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolveLocked(name, nil)
}

// resolveLocked is resolve with s.mu held; overlay, when not nil, holds
// the effects of earlier statements of the query being decided (a PREPARE
// earlier in the same query string).
func (s *session) resolveLocked(name string, overlay []stmtEffect) outcome {
	var o outcome
	o.add(s.defs[name])
	for i, x := range s.queue {
		if !x.affects(name) {
			continue
		}
		sameBatch := !slices.ContainsFunc(s.queue[i+1:], func(y *expect) bool { return y.kind == 'S' })
		var next outcome
		switch x.kind {
		case 'P':
			next.add(x.def)
		case 'C':
			next.add(nil)
		case 'Q', 'E':
			if x.kind == 'Q' && name == "" {
				next.add(nil)
			}
			for _, ef := range x.effects {
				switch {
				case ef.kind == 'a' && name != "", ef.kind == 'd' && ef.name == name:
					next.add(nil)
				case ef.kind == 'p' && ef.name == name:
					next.add(ef.def)
				}
			}
			// A simple query's statements can fail one by one without
			// skipping what follows, so its effects are never certain.
			sameBatch = sameBatch && x.kind == 'E'
		}
		if sameBatch {
			o = next
		} else {
			for _, d := range next.defs {
				o.add(d)
			}
		}
	}
	for _, ef := range overlay {
		switch {
		case ef.kind == 'a' && name != "", ef.kind == 'd' && ef.name == name:
			o = outcome{defs: []*stmtDef{nil}}
		case ef.kind == 'p' && ef.name == name:
			o = outcome{defs: []*stmtDef{ef.def}}
		}
	}
	return o
}

// confirm applies what the upstream confirmed: a Parse (ParseComplete),
// a statement Close (CloseComplete) or a statement's effects
// (CommandComplete). Called by the backend goroutine with s.mu held.
func (s *session) applyEffects(effects []stmtEffect) {
	for _, ef := range effects {
		// A description kept for the name describes what it was.
		delete(s.be.stmtDesc, ef.name)
		switch ef.kind {
		case 'p':
			s.defs[ef.name] = ef.def
		case 'd':
			delete(s.defs, ef.name)
		case 'a':
			for n := range s.be.stmtDesc {
				if n != "" {
					delete(s.be.stmtDesc, n)
				}
			}
			// DEALLOCATE ALL drops every named statement, the ones the
			// gateway prepared under private names too; the unnamed
			// statement is kept apart and survives (PostgreSQL's
			// DropAllPreparedStatements).
			for n := range s.defs {
				if n != "" {
					delete(s.defs, n)
				}
			}
		}
	}
}
