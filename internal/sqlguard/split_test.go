package sqlguard_test

import (
	"context"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sqlguard"
	"github.com/gatehouse-dev/gatehouse/internal/sqlguard/splittest"
	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	splitN    = flag.Int("split.n", 3000, "texts TestStatementSplit generates")
	splitSeed = flag.Uint64("split.seed", 1, "seed of TestStatementSplit's corpus")
)

// lexSetting is one combination of the settings that change how the
// server reads SQL text (docs: runtime-config-compatible, multibyte).
type lexSetting struct {
	enc    string // client_encoding
	scsOff bool   // standard_conforming_strings off
	bq     string // backslash_quote
}

func (s lexSetting) name() string {
	n := s.enc + "/" + map[bool]string{false: "on", true: "off"}[s.scsOff]
	if s.bq != "safe_encoding" {
		n += "/bq=" + s.bq
	}
	return n
}

// pinned reports whether s is what the gateway pins and the analysis
// assumes; backslash_quote is not pinned (see forwardedOK).
func (s lexSetting) pinned() bool { return s.enc == "UTF8" && !s.scsOff }

// converts reports whether the server converts output for this client
// encoding, so output bytes are comparable only when ASCII.
func (s lexSetting) converts() bool { return s.enc != "UTF8" && s.enc != "SQL_ASCII" }

// lexSettings lists the settings every text runs under, the analysis's
// first. The client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB)
// allow 0x5C as a trail byte; the others are there to check that Robust
// texts read alike in every encoding.
func lexSettings() []lexSetting {
	var out []lexSetting
	for _, bq := range []string{"safe_encoding", "on", "off"} {
		for _, off := range []bool{false, true} {
			out = append(out, lexSetting{"UTF8", off, bq})
		}
	}
	for _, enc := range []string{"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030", "JOHAB",
		"EUC_JP", "EUC_KR", "EUC_TW", "LATIN1", "WIN1252", "WIN1251", "KOI8R", "SQL_ASCII"} {
		for _, off := range []bool{false, true} {
			out = append(out, lexSetting{enc, off, "safe_encoding"})
		}
	}
	// backslash_quote=on lets \' through in client-only encodings.
	for _, enc := range []string{"SJIS", "BIG5", "GBK"} {
		for _, off := range []bool{false, true} {
			out = append(out, lexSetting{enc, off, "on"})
		}
	}
	return out
}

// splitText is one text of the corpus and its analysis.
type splitText struct {
	sql     string
	from    string // "cases.txt:N" or "seed S #i"
	want    int    // len(Analysis.Statements)
	classes []sqlguard.Class
	robust  bool
	differs []string
	// serverRejects: the server may refuse the whole text (a kept case of
	// syntax newer than the server).
	serverRejects bool
}

// TestStatementSplit is issue 10's property: for every text the gateway
// would forward under a setting (sqlguard.Robust, or the setting is the
// one the analysis assumes), the server's own statement split, counted as
// CommandComplete messages on a direct connection, equals the analysis's.
// Every other (text, setting) pair is one the gateway refuses; the test
// counts how many of those the server reads otherwise, and requires some,
// so that the corpus is known to hold what the refusals are for.
//
// Run with -v for the numbers; -split.n and -split.seed change the corpus
// (-short runs 300 texts).
func TestStatementSplit(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	start := time.Now()
	n := *splitN
	if testing.Short() && !flagSet("split.n") {
		n = 300
	}
	corpus, pgQueryRejects := splitCorpus(t, n)
	checkCache(t, corpus)
	checkServerRuns(t, dbURL, pgQueryRejects)
	settings := lexSettings()
	runStart := time.Now()

	// results[s][i] is text i's outcome under settings[s]. Settings run
	// concurrently, one connection each: two at a time, as the machine
	// running the suite has few cores.
	results := make([][]splittest.Outcome, len(settings))
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, len(settings))
	for range 2 {
		wg.Go(func() {
			for s := range work {
				out, err := runUnder(dbURL, settings[s], corpus)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", settings[s].name(), err)
				}
				results[s] = out
			}
		})
	}
	for s := range settings {
		work <- s
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ran := time.Since(runStart)

	st := splitStats{perSetting: map[string]int{}, refusedErrors: map[string]int{}}
	pinned := results[0]
	for s, set := range settings {
		for i, txt := range corpus {
			st.pairs++
			o, p := results[s][i], pinned[i]
			if txt.robust || set.pinned() {
				st.forwarded++
				if why := forwardedOK(set, txt, o, p, &st); why != "" {
					st.failures++
					if st.failures <= 25 {
						t.Errorf("forwarded under %s, %s: %s\n  text (%s): %s", set.name(), why, o.String(), txt.from, strconv.Quote(txt.sql))
					}
				}
				continue
			}
			st.refused++
			switch {
			case len(o.Tags) > txt.want || o.Code == "" && !o.Ran(txt.want):
				st.splitDiffers++
				st.perSetting[set.name()]++
				if st.perSetting[set.name()] <= 2 {
					st.examples = append(st.examples, fmt.Sprintf("%s: analysis %d, server %s: %s", set.name(), txt.want, o.String(), strconv.Quote(txt.sql)))
				}
			case o.Code != "":
				st.refusedErrors[o.Code]++
			case !slices.Equal(o.Tags, p.Tags) || comparable(set, p) && !slices.Equal(o.Output, p.Output):
				st.readDiffers++
			default:
				st.refusedSame++
			}
		}
	}
	checkDiffers(t, settings, results, corpus)

	t.Logf("corpus: %d texts (%d kept cases, %d generated with seed %d), %d Robust; %d kept cases pg_query rejects",
		len(corpus), st.cases(corpus), n, *splitSeed, st.robust(corpus), len(pgQueryRejects))
	t.Logf("pairs: %d (%d settings); forwarded %d, of which the server's lexer refused a statement in %d (\\' with backslash_quote=off) and %d (U&'' with standard_conforming_strings=off), output had no equivalent in the client encoding in %d, and syntax was newer than the server in %d",
		st.pairs, len(settings), st.forwarded, st.quoteRefused, st.unicodeRefused, st.unconvertible, st.serverRejects)
	t.Logf("refused: %d; the server's split differed in %d, it failed in %d %v, read the same split with other values in %d, read alike in %d",
		st.refused, st.splitDiffers, total(st.refusedErrors), st.refusedErrors, st.readDiffers, st.refusedSame)
	t.Logf("split differed per setting: %v", st.perSetting)
	for _, e := range st.examples {
		t.Logf("  %s", e)
	}
	t.Logf("ran in %v (the server runs %v)", time.Since(start).Round(time.Millisecond), ran.Round(time.Millisecond))

	// The corpus must hold what the refusals are for: texts the server
	// splits otherwise with standard_conforming_strings off, and with a
	// client-only encoding while standard_conforming_strings is on.
	if min := max(10, len(corpus)/100); st.splitDiffers < min {
		t.Errorf("only %d refused pairs split otherwise on the server, want at least %d: the generator is too tame", st.splitDiffers, min)
	}
	for _, name := range []string{"UTF8/off", "SJIS/on", "BIG5/on", "GBK/on", "GB18030/on"} {
		if st.perSetting[name] == 0 {
			t.Errorf("no refused text splits otherwise under %s: the generator is too tame", name)
		}
	}
}

type splitStats struct {
	pairs, forwarded, failures                      int
	quoteRefused, unicodeRefused, unconvertible     int
	serverRejects                                   int
	refused, splitDiffers, readDiffers, refusedSame int
	refusedErrors                                   map[string]int // by SQLSTATE
	perSetting                                      map[string]int
	examples                                        []string
}

func total(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func (splitStats) cases(c []splitText) (n int) {
	for _, t := range c {
		if strings.HasPrefix(t.from, "cases.txt") {
			n++
		}
	}
	return n
}

func (splitStats) robust(c []splitText) (n int) {
	for _, t := range c {
		if t.robust {
			n++
		}
	}
	return n
}

// forwardedOK checks the outcome o of a forwarded pair against the
// analysis and against p, the outcome under the analysis's own setting;
// it returns what is wrong, or "".
func forwardedOK(set lexSetting, txt splitText, o, p splittest.Outcome, st *splitStats) string {
	if o.Code != "" {
		k := len(o.Tags) // the statement that failed
		prefix := k < txt.want && k <= len(p.Tags) && slices.Equal(o.Tags, p.Tags[:k])
		switch {
		case txt.serverRejects && o.Code == "42601" && k == 0 && !o.Empty:
			st.serverRejects++
			return ""
		// backslash_quote=off makes the lexer refuse \' (in E'', or in ''
		// with standard_conforming_strings off): the whole text, before
		// any statement runs, or, in a body the server lexes when it runs
		// the statement (DO, CREATE FUNCTION: DDL to the analysis), that
		// statement, after the analysis's statements before it. The
		// gateway does not track backslash_quote: a refusal reads nothing
		// differently.
		case o.Code == "22P06" && set.bq == "off" && (k == 0 && !o.Empty || prefix && txt.classes[k] == sqlguard.ClassDDL):
			st.quoteRefused++
			return ""
		// The lexer refuses U&'' when standard_conforming_strings is off,
		// again for the whole text or in a body.
		case o.Code == "0A000" && set.scsOff && strings.Contains(o.Message, "Unicode escapes") && (k == 0 && !o.Empty || prefix && txt.classes[k] == sqlguard.ClassDDL):
			st.unicodeRefused++
			return ""
		// Output the client encoding cannot represent (U&'\00e9' is ASCII
		// text) fails the statement producing it, after the same statements
		// as under the analysis's setting.
		case set.converts() && (o.Code == "22P05" || o.Code == "22021") && p.NonASCII == k && prefix:
			st.unconvertible++
			return ""
		}
		return "the server failed"
	}
	if !o.Ran(txt.want) {
		return fmt.Sprintf("the analysis has %d statements", txt.want)
	}
	if !slices.Equal(o.Tags, p.Tags) {
		return "command tags differ from the analysis's setting: " + p.String()
	}
	if comparable(set, p) && !slices.Equal(o.Output, p.Output) {
		return "results differ from the analysis's setting"
	}
	return ""
}

// comparable reports whether output under set is byte for byte what it is
// under the analysis's setting when read alike.
func comparable(set lexSetting, p splittest.Outcome) bool {
	return !set.converts() || p.NonASCII < 0
}

// checkDiffers holds the kept cases to the settings they are known to
// split otherwise under.
func checkDiffers(t *testing.T, settings []lexSetting, results [][]splittest.Outcome, corpus []splitText) {
	t.Helper()
	index := map[string]int{}
	for s, set := range settings {
		index[set.name()] = s
	}
	for i, txt := range corpus {
		for _, name := range txt.differs {
			s, ok := index[name]
			if !ok {
				t.Errorf("%s: no setting %q", txt.from, name)
				continue
			}
			if o := results[s][i]; o.Ran(txt.want) || o.Code != "" && len(o.Tags) <= txt.want {
				t.Errorf("%s: under %s the server no longer splits it otherwise: %s", txt.from, name, o.String())
			}
		}
	}
}

// splitCorpus is the kept cases and the generated texts, with their
// analyses, and apart the kept cases pg_query rejects. Any other text
// pg_query rejects is a generator bug, or a difference between pg_query
// and the server worth keeping as a case: both fail the test.
func splitCorpus(t *testing.T, n int) (corpus []splitText, pgQueryRejects []string) {
	t.Helper()
	cases, err := splittest.Cases()
	if err != nil {
		t.Fatal(err)
	}
	var out []splitText
	var rejected []string
	add := func(sql, from string, c splittest.Case) {
		a := sqlguard.Analyze(sql)
		switch {
		case c.PgQueryRejects && a.Err == nil:
			t.Errorf("%s: pg_query now parses %s: drop pgquery-rejects", from, strconv.Quote(sql))
		case c.PgQueryRejects:
			rejected = append(rejected, sql)
		case a.Err != nil:
			t.Errorf("%s: pg_query rejects %s: %v", from, strconv.Quote(sql), a.Err)
		default:
			txt := splitText{sql: sql, from: from, want: len(a.Statements), robust: sqlguard.Robust(sql), differs: c.Differs, serverRejects: c.ServerRejects}
			for _, st := range a.Statements {
				txt.classes = append(txt.classes, st.Class)
			}
			out = append(out, txt)
		}
	}
	for _, c := range cases {
		add(c.Text, fmt.Sprintf("cases.txt:%d", c.Line), c)
	}
	g := splittest.New(*splitSeed)
	for i := range n {
		add(g.Text(), fmt.Sprintf("seed %d #%d", *splitSeed, i), splittest.Case{})
	}
	return out, rejected
}

// checkCache runs the corpus through one Analyzer: a cached analysis of a
// text of the same shape must be the text's own analysis, or the gateway
// would decide on another statement split than the parser's.
func checkCache(t *testing.T, corpus []splitText) {
	t.Helper()
	z := sqlguard.NewAnalyzer(0)
	for range 2 {
		for _, txt := range corpus {
			got, want := z.Analyze(txt.sql), sqlguard.Analyze(txt.sql)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: cached analysis differs from the parse of %s:\n got %+v\nwant %+v", txt.from, strconv.Quote(txt.sql), got, want)
			}
		}
	}
}

// checkServerRuns runs the kept cases pg_query rejects under the
// analysis's setting: the server must run them, or the case no longer
// shows a difference between the two.
func checkServerRuns(t *testing.T, dbURL string, texts []string) {
	t.Helper()
	corpus := make([]splitText, len(texts))
	for i, sql := range texts {
		corpus[i] = splitText{sql: sql, from: "pgquery-rejects case"}
	}
	out, err := runUnder(dbURL, lexSettings()[0], corpus)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Code != "" || len(o.Tags) == 0 {
			t.Errorf("pg_query rejects %s, and so does the server: %s", strconv.Quote(texts[i]), o.String())
		}
	}
}

// runUnder runs every text of corpus under set on its own direct
// connection, rolling back whatever transaction a text leaves open (one
// that failed under a setting the gateway refuses).
func runUnder(dbURL string, set lexSetting, corpus []splitText) ([]splittest.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["client_encoding"] = set.enc
	cfg.RuntimeParams["standard_conforming_strings"] = map[bool]string{false: "on", true: "off"}[set.scsOff]
	cfg.RuntimeParams["backslash_quote"] = set.bq
	cfg.RuntimeParams["escape_string_warning"] = "off"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if got := conn.ParameterStatus("client_encoding"); got != set.enc {
		return nil, fmt.Errorf("client_encoding is %q", got)
	}
	if got := conn.ParameterStatus("standard_conforming_strings"); got != cfg.RuntimeParams["standard_conforming_strings"] {
		return nil, fmt.Errorf("standard_conforming_strings is %q", got)
	}
	hj, err := conn.Hijack()
	if err != nil {
		return nil, err
	}
	defer hj.Conn.Close()
	fe := hj.Frontend
	hj.Conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if o, err := splittest.Exec(fe, "SHOW backslash_quote"); err != nil || o.Code != "" {
		return nil, fmt.Errorf("SHOW backslash_quote: %v %s", err, o.Message)
	}
	out := make([]splittest.Outcome, len(corpus))
	for i, txt := range corpus {
		o, err := splittest.Exec(fe, txt.sql)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", txt.from, err)
		}
		out[i] = o
		if o.Tx != 'I' {
			if r, err := splittest.Exec(fe, "ROLLBACK"); err != nil || r.Code != "" {
				return nil, fmt.Errorf("ROLLBACK after %s: %v %s", txt.from, err, r.Message)
			}
		}
	}
	return out, nil
}
