package postgres_test

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard/splittest"
	"github.com/jackc/pgx/v5/pgproto3"
)

var (
	splitN    = flag.Int("split.n", 300, "texts TestGatewayStatementSplit generates")
	splitSeed = flag.Uint64("split.seed", 2, "seed of TestGatewayStatementSplit's corpus")
)

// gwText is one text of the corpus and its analysis.
type gwText struct {
	sql     string
	from    string
	want    int // len(Analysis.Statements)
	classes []sqlguard.Class
	robust  bool
}

// refusedOff is the start of the gateway's refusal of a text that is not
// Robust while standard_conforming_strings is off (lexical.go).
const refusedOff = "gatehouse: standard_conforming_strings is off in this session"

// TestGatewayStatementSplit is issue 10's property through the gateway: a
// human with a permit-all policy sends generated texts (simple Query,
// by hand), with standard_conforming_strings on, after SETting it off, and
// pipelined behind a function that turns it off. Every text is either
// refused by the gateway (0A000) or split by the server exactly as the
// analysis splits it; while the setting is off, no text that is not
// sqlguard.Robust reaches the server.
//
// -split.n and -split.seed change the corpus (TestStatementSplit in
// internal/sqlguard runs a larger one on a direct connection).
func TestGatewayStatementSplit(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: `
@id("dba-all") permit (principal in Group::"dba", action, resource);`})
	h.exec(`CREATE FUNCTION scs_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$`)
	corpus := gatewayCorpus(t)
	start := time.Now()
	var st gwStats

	t.Run("standard_conforming_strings on", func(t *testing.T) {
		r := h.raw(t, h.userToken("dba@example.com", "dba"))
		for _, txt := range corpus {
			o := gwExec(t, r, txt.sql)
			st.check(t, txt, o, false)
		}
	})
	t.Run("standard_conforming_strings set off", func(t *testing.T) {
		r := h.raw(t, h.userToken("dba@example.com", "dba"))
		if o := gwExec(t, r, "SET standard_conforming_strings = off"); !o.Ran(1) {
			t.Fatalf("SET by a human with a permit-all policy: %s", o.String())
		}
		for _, txt := range corpus {
			o := gwExec(t, r, txt.sql)
			st.check(t, txt, o, true)
		}
	})
	t.Run("pipelined behind a function that turns it off", func(t *testing.T) {
		r := h.raw(t, h.userToken("dba@example.com", "dba"))
		// Each pipeline: the function, texts (read with the setting off),
		// RESET, texts (read with it on again), all sent before anything
		// is read, so that a text arrives while the statement that
		// changes the setting is still running.
		const per = 40
		for i := 0; i < len(corpus); i += per {
			chunk := corpus[i:min(i+per, len(corpus))]
			half := len(chunk) / 2
			texts := []string{"SELECT scs_off()"}
			for _, txt := range chunk[:half] {
				texts = append(texts, txt.sql)
			}
			texts = append(texts, "RESET standard_conforming_strings")
			for _, txt := range chunk[half:] {
				texts = append(texts, txt.sql)
			}
			out := pipeline(t, r, texts)
			if !out[0].Ran(1) || !out[half+1].Ran(1) {
				t.Fatalf("pipeline %d: scs_off %s, RESET %s", i/per, out[0].String(), out[half+1].String())
			}
			for j, txt := range chunk[:half] {
				st.check(t, txt, out[1+j], true)
			}
			for j, txt := range chunk[half:] {
				st.check(t, txt, out[half+2+j], false)
			}
		}
	})
	t.Logf("corpus: %d texts (seed %d, and the kept cases), %d Robust; %d (text, setting) runs, %d forwarded with the analysis's split, %d refused by the gateway (%d with standard_conforming_strings off, %d with it on), %d refused by the server's lexer (U&'' with standard_conforming_strings off); %v",
		len(corpus), *splitSeed, gwRobust(corpus), st.runs, st.forwarded, st.refused, st.refusedOff, st.refusedOn, st.serverRefused, time.Since(start).Round(time.Millisecond))
	if st.refusedOff == 0 || st.forwarded == 0 {
		t.Errorf("the corpus exercised too little: %+v", st)
	}
}

// TestLexicalWaitWakes: a text that is not Robust, pipelined behind
// statements that may change the settings, waits for their ReadyForQuery
// and is decided as soon as it comes (lexical.go). A wait that misses it
// holds the whole session for lexicalWait (30 s) and then refuses the text
// as unsettled, though the settings are known.
func TestLexicalWaitWakes(t *testing.T) {
	h := newHarness(t, harnessOpts{extraPolicy: `
@id("dba-all") permit (principal in Group::"dba", action, resource);`})
	h.exec(`CREATE FUNCTION scs_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$`)
	r := h.raw(t, h.userToken("dba@example.com", "dba"))
	// The wake-up is lost when the ReadyForQuery comes between the
	// gateway's look at the settings and its wait: a race, which each
	// waiting text runs once; ten rounds of twenty make it near certain.
	const n = 10
	texts := []string{"SELECT scs_off()"}
	for range n {
		texts = append(texts, "SELECT 'é'")
	}
	texts = append(texts, "RESET standard_conforming_strings")
	for range n {
		texts = append(texts, "SELECT 'é'")
	}
	for round := range 10 {
		out := pipeline(t, r, texts)
		for i, o := range out {
			switch {
			case i == 0 || i == n+1:
				if !o.Ran(1) {
					t.Fatalf("round %d: %s: %s", round, texts[i], o.String())
				}
			case i <= n:
				if o.Code != "0A000" || !strings.HasPrefix(o.Message, refusedOff) {
					t.Fatalf("round %d, answer %d, with standard_conforming_strings off: %s", round, i, o.String())
				}
			default:
				if !o.Ran(1) {
					t.Fatalf("round %d, answer %d, after RESET: %s", round, i, o.String())
				}
			}
		}
	}
}

type gwStats struct {
	runs, forwarded, refused, refusedOff, refusedOn, serverRefused, failures int
}

// check holds one outcome to the property; scsOff says whether the text
// ran with standard_conforming_strings off.
func (st *gwStats) check(t *testing.T, txt gwText, o splittest.Outcome, scsOff bool) {
	t.Helper()
	st.runs++
	var why string
	switch {
	case o.Code == "0A000" && strings.HasPrefix(o.Message, "gatehouse: "):
		st.refused++
		switch {
		case len(o.Tags) != 0:
			why = "refused after statements ran"
		case scsOff && txt.robust:
			why = "a Robust text was refused"
		case scsOff && strings.HasPrefix(o.Message, refusedOff):
			st.refusedOff++
		case scsOff:
			why = "refused for another reason than the setting"
		default:
			st.refusedOn++
		}
	case scsOff && !txt.robust:
		why = "forwarded while standard_conforming_strings is off"
	case o.Ran(txt.want):
		st.forwarded++
	// With the setting off the server's lexer refuses U&'', for the whole
	// text or, in a body it lexes when the statement runs, for that
	// statement: the statements before it are the analysis's.
	case scsOff && o.Code == "0A000" && strings.Contains(o.Message, "Unicode escapes") &&
		(len(o.Tags) == 0 && !o.Empty || len(o.Tags) < txt.want && txt.classes[len(o.Tags)] == sqlguard.ClassDDL):
		st.serverRefused++
	default:
		why = fmt.Sprintf("the analysis has %d statements", txt.want)
	}
	if why != "" {
		st.failures++
		if st.failures <= 20 {
			t.Errorf("%s (standard_conforming_strings off: %v): %s\n  text (%s): %s", why, scsOff, o.String(), txt.from, strconv.Quote(txt.sql))
		}
	}
}

// gatewayCorpus is the kept cases pg_query parses and generated texts.
func gatewayCorpus(t *testing.T) []gwText {
	t.Helper()
	cases, err := splittest.Cases()
	if err != nil {
		t.Fatal(err)
	}
	var out []gwText
	add := func(sql, from string) {
		a := sqlguard.Analyze(sql)
		if a.Err != nil {
			t.Errorf("%s: pg_query rejects %s: %v", from, strconv.Quote(sql), a.Err)
			return
		}
		txt := gwText{sql: sql, from: from, want: len(a.Statements), robust: sqlguard.Robust(sql)}
		for _, s := range a.Statements {
			txt.classes = append(txt.classes, s.Class)
		}
		out = append(out, txt)
	}
	for _, c := range cases {
		// The server refuses these whole, or the gateway decides them
		// unparsed (which this permit-all policy permits): no split to
		// compare.
		if !c.PgQueryRejects && !c.ServerRejects {
			add(c.Text, fmt.Sprintf("cases.txt:%d", c.Line))
		}
	}
	g := splittest.New(*splitSeed)
	for i := range *splitN {
		add(g.Text(), fmt.Sprintf("seed %d #%d", *splitSeed, i))
	}
	return out
}

func gwRobust(c []gwText) (n int) {
	for _, t := range c {
		if t.robust {
			n++
		}
	}
	return n
}

// gwExec runs one text and rolls back a transaction it leaves open.
func gwExec(t *testing.T, r *rawClient, sql string) splittest.Outcome {
	t.Helper()
	r.conn.SetDeadline(time.Now().Add(30 * time.Second))
	o, err := splittest.Exec(r.fe, sql)
	if err != nil {
		t.Fatalf("%s: %v", strconv.Quote(sql), err)
	}
	if o.Tx != 'I' {
		if rb, err := splittest.Exec(r.fe, "ROLLBACK"); err != nil || rb.Code != "" {
			t.Fatalf("ROLLBACK: %v %s", err, rb.Message)
		}
	}
	return o
}

// answerWait bounds the wait for each answer of a pipeline: well below
// the gateway's lexicalWait (30 s), which a text waits for the settings
// only when the wake-up it waits for is lost.
const answerWait = 10 * time.Second

// pipeline sends every text before reading any answer: the writing runs
// on its own goroutine, straight to the connection, so that neither side
// blocks on a full socket buffer while the gateway holds a text until the
// settings are known.
func pipeline(t *testing.T, r *rawClient, texts []string) []splittest.Outcome {
	t.Helper()
	var buf []byte
	for _, s := range texts {
		var err error
		if buf, err = (&pgproto3.Query{String: s}).Encode(buf); err != nil {
			t.Fatal(err)
		}
	}
	r.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := r.conn.Write(buf)
		werr <- err
	}()
	out := make([]splittest.Outcome, len(texts))
	for i := range texts {
		r.conn.SetReadDeadline(time.Now().Add(answerWait))
		o, err := splittest.Read(r.fe)
		if err != nil {
			t.Fatalf("pipeline: no answer %d of %d within %v (%v): the gateway sits on %s, whose settings are known once the answers before it have come, as they have",
				i, len(texts), answerWait, err, strconv.Quote(texts[i]))
		}
		if o.Tx != 'I' {
			t.Fatalf("pipeline: %s left a transaction open (%c): %s", strconv.Quote(texts[i]), o.Tx, o.String())
		}
		out[i] = o
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	return out
}
