package mcp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/mask"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool names. docs/mcp.md documents each with its schemas.
const (
	toolListConnections = "list_connections"
	toolDescribe        = "describe"
	toolQuery           = "query"
	toolApprovalStatus  = "approval_status"
)

// ListConnectionsInput takes nothing.
type ListConnectionsInput struct{}

// ConnectionInfo is one connection the token may use.
type ConnectionInfo struct {
	Name     string `json:"name" jsonschema:"the connection's name: pass it as connection to describe and query"`
	Type     string `json:"type" jsonschema:"the kind of target: postgres"`
	Database string `json:"database,omitempty" jsonschema:"the default database"`
}

// ListConnectionsOutput lists connections.
type ListConnectionsOutput struct {
	Connections []ConnectionInfo `json:"connections"`
}

// DescribeInput names what to describe.
type DescribeInput struct {
	Connection string `json:"connection" jsonschema:"the connection to describe, as list_connections names it"`
	Schema     string `json:"schema,omitempty" jsonschema:"only this schema (default: every schema but pg_catalog and information_schema)"`
	Table      string `json:"table,omitempty" jsonschema:"only tables of this name"`
}

// DescribeOutput is a connection's tables and columns.
type DescribeOutput struct {
	Connection string      `json:"connection"`
	Tables     []TableInfo `json:"tables"`
	Truncated  bool        `json:"truncated" jsonschema:"true when there were more columns than one answer holds: narrow with schema or table"`
}

// TableInfo is one table or view.
type TableInfo struct {
	Schema  string       `json:"schema"`
	Name    string       `json:"name"`
	Kind    string       `json:"kind" jsonschema:"table, view, foreign table, ..."`
	Columns []ColumnInfo `json:"columns"`
}

// ColumnInfo is one column.
type ColumnInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	Masked   string `json:"masked,omitempty" jsonschema:"how Gatehouse masks this column's values for you: redact, partial, token or null (a rule for the column), or scan (sensitive values found in it are masked); absent when values come back as they are"`
}

// QueryInput is a statement to run.
type QueryInput struct {
	Connection  string `json:"connection" jsonschema:"the connection to run the SQL on, as list_connections names it"`
	SQL         string `json:"sql" jsonschema:"the SQL to run: one statement is best; several separated by ; run as one query string and return the last result"`
	MaxRows     int    `json:"max_rows,omitempty"`
	WaitSeconds int    `json:"wait_seconds,omitempty"`
}

// QueryOutput is a statement's result, or the news that it is held.
type QueryOutput struct {
	Status     string   `json:"status" jsonschema:"ok: the statement ran; pending: it waits for a human's approval (see approval_id)"`
	Connection string   `json:"connection"`
	Columns    []Column `json:"columns"`
	Rows       [][]any  `json:"rows" jsonschema:"one array per row, values in column order: numbers, booleans and JSON as such, NULL as null, everything else as text; masked values are text"`
	RowCount   int      `json:"row_count"`
	Truncated  bool     `json:"truncated" jsonschema:"true when the result had more rows than max_rows; the rest were not read"`
	CommandTag string   `json:"command_tag,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty" jsonschema:"for status pending: pass it to approval_status"`
	Message    string   `json:"message,omitempty"`
}

// ApprovalStatusInput names a held statement.
type ApprovalStatusInput struct {
	ApprovalID  string `json:"approval_id" jsonschema:"the approval_id a pending query returned"`
	WaitSeconds int    `json:"wait_seconds,omitempty"`
}

// ApprovalStatusOutput is where a held statement stands.
type ApprovalStatusOutput struct {
	ApprovalID string       `json:"approval_id"`
	Status     string       `json:"status" jsonschema:"pending: still waiting for a reviewer; completed: approved and run (see result); failed: denied, expired or the statement failed (see error). For an approval no query here waits on, its record's status: approved, denied, expired or used"`
	Error      string       `json:"error,omitempty"`
	Message    string       `json:"message,omitempty"`
	Result     *QueryOutput `json:"result,omitempty"`
}

func (e *Engine) addTools() {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        toolListConnections,
		Title:       "List connections",
		Description: "List the connections (databases) your Gatehouse token may use.",
		Annotations: readOnly,
	}, e.listConnections)
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        toolDescribe,
		Title:       "Describe a connection",
		Description: "List the schemas, tables and columns of a connection, with each column's type and whether Gatehouse masks its values for you.",
		Annotations: readOnly,
	}, e.describe)
	mcp.AddTool(e.server, &mcp.Tool{
		Name:  toolQuery,
		Title: "Run SQL",
		Description: "Run SQL on a connection through Gatehouse. Policy decides every statement: a denied one is an error with the policy's reason. " +
			"A statement that needs a human's approval answers status pending with an approval_id; get its result with approval_status. " +
			"Sensitive values in results may be masked.",
		InputSchema: e.queryInputSchema(),
		// Whether a statement writes is decided per statement by policy.
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(false)},
	}, e.query)
	mcp.AddTool(e.server, &mcp.Tool{
		Name:        toolApprovalStatus,
		Title:       "Approval status",
		Description: "Ask where a statement held for approval stands; once approved and run, the answer carries its result.",
		InputSchema: e.approvalInputSchema(),
		Annotations: readOnly,
	}, e.approvalStatus)
}

func ptr[T any](v T) *T { return &v }

// queryInputSchema is QueryInput's schema with this gateway's limits.
func (e *Engine) queryInputSchema() *jsonschema.Schema {
	s, err := jsonschema.For[QueryInput](nil)
	if err != nil {
		panic(fmt.Sprintf("mcp: query schema: %v", err)) // a fixed type; cannot fail
	}
	s.Properties["max_rows"].Description = fmt.Sprintf("the most rows to return (default %d, at most %d)", e.opts.MaxRows, e.opts.MaxRowsLimit)
	s.Properties["max_rows"].Minimum = ptr(0.0)
	s.Properties["max_rows"].Maximum = ptr(float64(e.opts.MaxRowsLimit))
	s.Properties["wait_seconds"].Description = waitDescription(e.opts.ApprovalWait, e.opts.ApprovalWaitLimit)
	s.Properties["wait_seconds"].Minimum = ptr(0.0)
	s.Properties["wait_seconds"].Maximum = ptr(e.opts.ApprovalWaitLimit.Seconds())
	return s
}

func (e *Engine) approvalInputSchema() *jsonschema.Schema {
	s, err := jsonschema.For[ApprovalStatusInput](nil)
	if err != nil {
		panic(fmt.Sprintf("mcp: approval_status schema: %v", err))
	}
	s.Properties["wait_seconds"].Description = fmt.Sprintf("how long to wait for the outcome while it is pending (default 0: answer at once; at most %d)", int(e.opts.ApprovalWaitLimit.Seconds()))
	s.Properties["wait_seconds"].Minimum = ptr(0.0)
	s.Properties["wait_seconds"].Maximum = ptr(e.opts.ApprovalWaitLimit.Seconds())
	return s
}

func waitDescription(def, limit time.Duration) string {
	return fmt.Sprintf("if the statement needs a human's approval, how many seconds to wait for it before answering pending (default %d, at most %d)", int(def.Seconds()), int(limit.Seconds()))
}

func (e *Engine) listConnections(ctx context.Context, req *mcp.CallToolRequest, _ ListConnectionsInput) (*mcp.CallToolResult, ListConnectionsOutput, error) {
	c, err := e.begin(ctx, req, "", arguments())
	if err != nil {
		return nil, ListConnectionsOutput{}, err
	}
	out := ListConnectionsOutput{Connections: []ConnectionInfo{}}
	var text strings.Builder
	for _, conn := range e.opts.Connections() {
		if !c.gs.Claims.AllowsConnection(conn.Name) {
			continue
		}
		out.Connections = append(out.Connections, ConnectionInfo{Name: conn.Name, Type: conn.Type, Database: conn.Database})
		fmt.Fprintf(&text, "%s (%s", conn.Name, conn.Type)
		if conn.Database != "" {
			fmt.Fprintf(&text, ", database %s", conn.Database)
		}
		text.WriteString(")\n")
	}
	if len(out.Connections) == 0 {
		text.WriteString("Your token may use no configured connection.\n")
	}
	c.finish("ok", nil, map[string]string{"connections": strconv.Itoa(len(out.Connections))})
	return textResult(text.String()), out, nil
}

// describeSQL lists columns with their tables. It runs as the agent, so it
// shows what the agent's database role may see, and policy decides it
// like any other SELECT (on information_schema.columns and .tables).
const describeSQL = `SELECT c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
  AND ($1 = '' OR c.table_schema = $1) AND ($2 = '' OR c.table_name = $2)
ORDER BY c.table_schema, c.table_name, c.ordinal_position`

// describeLimit bounds the columns one describe answer holds.
const describeLimit = 5000

func (e *Engine) describe(ctx context.Context, req *mcp.CallToolRequest, in DescribeInput) (*mcp.CallToolResult, DescribeOutput, error) {
	if in.Connection == "" {
		return nil, DescribeOutput{}, toolErrorf("gatehouse: connection is required: call list_connections for the names")
	}
	c, err := e.begin(ctx, req, in.Connection, arguments("connection", in.Connection, "schema", in.Schema, "table", in.Table))
	if err != nil {
		return nil, DescribeOutput{}, err
	}
	out, err := c.describe(ctx, in)
	if err != nil {
		c.finish("error", err, nil)
		return nil, DescribeOutput{}, err
	}
	c.finish("ok", nil, map[string]string{"tables": strconv.Itoa(len(out.Tables))})
	return textResult(describeText(out)), out, nil
}

func (c *call) describe(ctx context.Context, in DescribeInput) (DescribeOutput, error) {
	out := DescribeOutput{Connection: in.Connection, Tables: []TableInfo{}}
	s, err := c.connectSQL(ctx, in.Connection, nil)
	if err != nil {
		return out, err
	}
	defer s.close()
	rows, truncated, err := s.params(ctx, describeSQL, []string{in.Schema, in.Table}, describeLimit)
	if err != nil {
		return out, err
	}
	out.Truncated = truncated
	var view *mask.Masker
	if m := c.e.opts.Masker; m != nil {
		view = m.For(mask.Principal{ID: c.gs.PrincipalUID(), Groups: c.gs.Claims.Groups, ClearText: c.gs.ClearText})
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for _, r := range rows {
		if len(r) != 6 {
			continue
		}
		schema, table := str(r[0]), str(r[1])
		if n := len(out.Tables); n == 0 || out.Tables[n-1].Schema != schema || out.Tables[n-1].Name != table {
			out.Tables = append(out.Tables, TableInfo{Schema: schema, Name: table, Kind: tableKind(str(r[2])), Columns: []ColumnInfo{}})
		}
		t := &out.Tables[len(out.Tables)-1]
		col := ColumnInfo{Name: str(r[3]), Type: str(r[4]), Nullable: str(r[5]) == "YES"}
		col.Masked = maskedAs(view, mask.ColumnRef{Connection: in.Connection, Schema: schema, Table: table, Column: col.Name})
		t.Columns = append(t.Columns, col)
	}
	return out, nil
}

// maskedAs says how the principal's view masks a column's values: the same
// rule the PostgreSQL engine applies to the column in results.
func maskedAs(view *mask.Masker, ref mask.ColumnRef) string {
	if view == nil || view.MasksNothing() {
		return ""
	}
	rule := view.Column(ref)
	switch {
	case rule.Passthrough():
		return ""
	case rule.Strategy() != 0:
		return rule.Strategy().String()
	}
	return "scan"
}

func tableKind(t string) string {
	switch t {
	case "BASE TABLE":
		return "table"
	case "VIEW":
		return "view"
	case "FOREIGN":
		return "foreign table"
	case "LOCAL TEMPORARY":
		return "temporary table"
	}
	return strings.ToLower(t)
}

func (e *Engine) query(ctx context.Context, req *mcp.CallToolRequest, in QueryInput) (*mcp.CallToolResult, *QueryOutput, error) {
	if in.Connection == "" {
		return nil, nil, toolErrorf("gatehouse: connection is required: call list_connections for the names")
	}
	c, err := e.begin(ctx, req, in.Connection, arguments("connection", in.Connection, "sql", in.SQL, "max_rows", in.MaxRows, "wait_seconds", in.WaitSeconds))
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(in.SQL) == "" {
		err := toolErrorf("gatehouse: sql is empty")
		c.finish("error", err, nil)
		return nil, nil, err
	}
	maxRows := in.MaxRows
	if maxRows <= 0 {
		maxRows = e.opts.MaxRows
	}
	maxRows = min(maxRows, e.opts.MaxRowsLimit)
	wait := e.opts.ApprovalWait
	if in.WaitSeconds > 0 {
		wait = min(time.Duration(in.WaitSeconds)*time.Second, e.opts.ApprovalWaitLimit)
	}

	owner := c.gs.PrincipalUID() + " for " + c.gs.Claims.Actor
	key := owner + "\x00" + in.Connection + "\x00" + in.SQL
	details := map[string]string{}
	q := e.pending.byQuery(key)
	if q != nil {
		// The same query sent again while (or after) its statement was
		// held: answer with that statement's outcome rather than asking
		// for a second approval.
		details["approval_id"] = q.id()
		details["attached"] = "true"
	} else {
		q = e.startQuery(ctx, c, in.Connection, in.SQL, maxRows, owner, key)
	}
	out, err := e.await(ctx, q, wait)
	if out != nil && out.Connection == "" {
		out.Connection = in.Connection
	}
	if id := q.id(); id != "" {
		details["approval_id"] = id
	}
	switch {
	case err != nil:
		c.finish("error", err, details)
		e.deliveredIfHeld(q)
		return nil, nil, err
	case out.Status == statusPending:
		c.finish(statusPending, nil, details)
		return textResult(out.Message), out, nil
	}
	details["rows"] = strconv.Itoa(out.RowCount)
	c.finish("ok", nil, details)
	e.deliveredIfHeld(q)
	return textResult(resultText(out)), out, nil
}

func (e *Engine) deliveredIfHeld(q *heldQuery) {
	if q.id() != "" {
		e.pending.delivered(q)
	}
}

const statusPending = "pending"

// startQuery runs a query in the background on its own wire session. Until
// its statement is held the query belongs to its call (a call that goes
// away cancels it); once held, it waits for the reviewer on its own.
func (e *Engine) startQuery(ctx context.Context, c *call, connection, sql string, maxRows int, owner, key string) *heldQuery {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Hold)
	q := &heldQuery{owner: owner, key: key, held: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	e.pending.running(q)
	stop := context.AfterFunc(ctx, q.abandon)
	go func() {
		defer cancel()
		defer stop()
		defer e.pending.stopped(q)
		out, err := c.runQuery(qctx, connection, sql, maxRows, func(id string) {
			q.setApproval(id)
			e.pending.held(q)
		})
		q.finish(out, err)
		q.mu.Lock()
		detached := q.detached
		q.mu.Unlock()
		if detached {
			// Its call answered pending long ago; this is the outcome.
			outcome, details := "ok", map[string]string{"approval_id": q.id(), "after": "approval"}
			if err != nil {
				outcome = "error"
			} else {
				details["rows"] = strconv.Itoa(out.RowCount)
			}
			c.finish(outcome, err, details)
		}
	}()
	return q
}

func (c *call) runQuery(ctx context.Context, connection, sql string, maxRows int, onApproval func(string)) (*QueryOutput, error) {
	s, err := c.connectSQL(ctx, connection, onApproval)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res, err := s.query(ctx, sql, maxRows)
	if err != nil {
		return nil, err
	}
	out := &QueryOutput{Status: "ok", Connection: connection, Columns: res.Columns, Rows: res.Rows,
		RowCount: len(res.Rows), Truncated: res.Truncated, CommandTag: res.CommandTag}
	if out.Columns == nil {
		out.Columns = []Column{}
	}
	if out.Rows == nil {
		out.Rows = [][]any{}
	}
	if out.Truncated {
		out.Message = fmt.Sprintf("Only the first %d rows are shown: the result has more. Narrow the query or raise max_rows.", len(out.Rows))
	}
	return out, nil
}

// await waits for a query's outcome: at once if its statement is not held,
// else up to wait, after which it answers pending and leaves the statement
// waiting in the background.
func (e *Engine) await(ctx context.Context, q *heldQuery, wait time.Duration) (*QueryOutput, error) {
	select {
	case <-q.done:
		return q.outcome()
	case <-q.held:
	case <-ctx.Done():
		return nil, toolErrorf("gatehouse: the call was cancelled")
	case <-e.closed:
		return nil, toolErrorf("gatehouse: the gateway is shutting down")
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-q.done:
		return q.outcome()
	case <-t.C:
	case <-ctx.Done():
	case <-e.closed:
		return nil, toolErrorf("gatehouse: the gateway is shutting down")
	}
	q.detach()
	id := q.id()
	return &QueryOutput{Status: statusPending, Connection: "", Columns: []Column{}, Rows: [][]any{}, ApprovalID: id,
		Message: fmt.Sprintf("The statement is held for a human's approval (approval id %s). Call approval_status with approval_id %q, or send the same query again, to get its result once a reviewer approves it.", id, id)}, nil
}

func (e *Engine) approvalStatus(ctx context.Context, req *mcp.CallToolRequest, in ApprovalStatusInput) (*mcp.CallToolResult, ApprovalStatusOutput, error) {
	c, err := e.begin(ctx, req, "", arguments("approval_id", in.ApprovalID, "wait_seconds", in.WaitSeconds))
	if err != nil {
		return nil, ApprovalStatusOutput{}, err
	}
	out := ApprovalStatusOutput{ApprovalID: in.ApprovalID}
	q := e.pending.lookup(c.gs.PrincipalUID()+" for "+c.gs.Claims.Actor, in.ApprovalID)
	if q == nil {
		if out, ok := e.approvalRecord(ctx, c, in.ApprovalID); ok {
			c.finish("ok", nil, map[string]string{"approval_id": in.ApprovalID, "status": out.Status})
			return textResult(strings.TrimSpace(fmt.Sprintf("Approval %s is %s. %s", in.ApprovalID, out.Status, out.Message))), out, nil
		}
		err := toolErrorf("gatehouse: no statement of yours is held under approval id %q on this gateway (results are kept for %s after they finish)", in.ApprovalID, e.opts.ResultTTL)
		c.finish("error", err, nil)
		return nil, out, err
	}
	if in.WaitSeconds > 0 {
		t := time.NewTimer(min(time.Duration(in.WaitSeconds)*time.Second, e.opts.ApprovalWaitLimit))
		select {
		case <-q.done:
		case <-t.C:
		case <-ctx.Done():
		case <-e.closed:
		}
		t.Stop()
	}
	var text string
	select {
	case <-q.done:
		res, qerr := q.outcome()
		if qerr != nil {
			out.Status, out.Error = "failed", errorText(qerr)
			text = "The statement did not run: " + out.Error
		} else {
			out.Status, out.Result = "completed", res
			text = resultText(res)
		}
		e.pending.delivered(q)
	default:
		out.Status = statusPending
		text = fmt.Sprintf("Approval %s is still pending.", in.ApprovalID)
	}
	c.finish("ok", nil, map[string]string{"approval_id": in.ApprovalID, "status": out.Status})
	return textResult(text), out, nil
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// approvalRecord reports an approval of the caller's that no query of this
// gateway's MCP engine is waiting on (one a wire client asked for, or one
// whose query ended here): its status, without a result.
func (e *Engine) approvalRecord(ctx context.Context, c *call, id string) (ApprovalStatusOutput, bool) {
	svc := e.opts.Pipeline.Approvals
	if svc == nil {
		return ApprovalStatusOutput{}, false
	}
	// Who may read an approval is approval:view (its requester and its
	// reviewers), decided as on the REST API.
	a, err := svc.GetFor(ctx, c.gs.Reviewer(), id)
	if err != nil {
		return ApprovalStatusOutput{}, false
	}
	out := ApprovalStatusOutput{ApprovalID: id, Status: a.Status}
	if a.Status == approval.Approved {
		out.Message = "No query of this gateway's MCP engine is waiting on it: send the statement again to run it."
	}
	return out, true
}
