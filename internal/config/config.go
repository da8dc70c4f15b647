package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"gopkg.in/yaml.v3"
)

// Config is gatehouse.yaml. docs/configuration.md documents every key.
type Config struct {
	DataDir string `yaml:"data_dir"`
	Store   string `yaml:"store"`
	Listen  Listen `yaml:"listen"`
	// Policies is the directory of Cedar policy files.
	Policies string `yaml:"policies"`
	// AllowInsecureLoopback lets wire clients send a token without TLS when
	// they connect from a loopback address.
	AllowInsecureLoopback bool            `yaml:"allow_insecure_loopback"`
	Log                   Log             `yaml:"log"`
	Identity              identity.Config `yaml:"identity"`
	Audit                 Audit           `yaml:"audit"`
	TLS                   TLS             `yaml:"tls"`
	Postgres              PostgresEngine  `yaml:"postgres"`
	Masking               Masking         `yaml:"masking"`
	Approvals             Approvals       `yaml:"approvals"`
	MCP                   MCP             `yaml:"mcp"`
	Connections           []Connection    `yaml:"connections"`
	Agents                Agents          `yaml:"agents"`
	Limits                Limits          `yaml:"limits"`
	Metrics               Metrics         `yaml:"metrics"`

	// path is the file this config was read from; relative paths in it are
	// relative to that file's directory.
	path string
}

// Listen holds listener addresses; an empty address disables a listener.
type Listen struct {
	API      string `yaml:"api"`
	Postgres string `yaml:"postgres"`
	Agents   string `yaml:"agents"`
}

// Log configures the JSON logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Audit configures the audit log.
type Audit struct {
	// Durability is "group" (default: events are committed in groups and a
	// statement proceeds once its event is queued in order) or "sync" (a
	// statement waits until its event is durable and fails closed).
	Durability         string        `yaml:"durability"`
	CheckpointEvery    int64         `yaml:"checkpoint_every"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// UnsignedGrace is how long an event may stay outside every signed
	// checkpoint before `audit verify` fails (default checkpoint_interval
	// + 1m).
	UnsignedGrace time.Duration `yaml:"unsigned_grace"`
	// CheckpointFile is the append-only copy of the signed checkpoints
	// outside the store (default data_dir/audit-checkpoints.log; "off"
	// turns it off).
	CheckpointFile string `yaml:"checkpoint_file"`
	// WitnessURL, if set, is sent every checkpoint written to the file as
	// a POST of the signed note.
	WitnessURL string `yaml:"witness_url"`
	// QueueSize bounds the events waiting for a group commit (default
	// 65536). A full queue slows the requests that produce events until
	// the store catches up; it never refuses them.
	QueueSize int `yaml:"queue_size"`
}

// CheckpointFileOff turns the audit checkpoint file off.
const CheckpointFileOff = "off"

// AuditCheckpointFile is the audit checkpoint file's path, or empty when
// it is off.
func (c *Config) AuditCheckpointFile() string {
	if c.Audit.CheckpointFile == CheckpointFileOff {
		return ""
	}
	return c.Audit.CheckpointFile
}

// TLS names the gateway's serving certificate; when both are empty a
// self-signed one is generated in data_dir/tls.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PostgresEngine tunes the PostgreSQL listener.
type PostgresEngine struct {
	// MaxMessageBytes bounds one protocol message (default 64 MiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxQueryBytes bounds the SQL text of one statement the gateway
	// analyses (default 1 MiB).
	MaxQueryBytes int `yaml:"max_query_bytes"`
	// MaxStatements bounds the statements in one query string (default
	// 10,000).
	MaxStatements int `yaml:"max_statements"`
}

// Metrics configures /metrics on the API listener.
type Metrics struct {
	// Token, if set (env:NAME or file:PATH), must be presented as
	// "Authorization: Bearer TOKEN" to read /metrics.
	Token Secret `yaml:"token"`
}

// Masking configures result masking.
type Masking struct {
	// Enabled turns masking on (default true).
	Enabled *bool `yaml:"enabled"`
	// Rules is a mask rules file; empty uses the built-in default (every
	// detector redacted).
	Rules string `yaml:"rules"`
	// Key is the HMAC key for the token strategy (env:NAME or file:PATH);
	// empty uses a key generated in data_dir/keys/mask.key.
	Key Secret `yaml:"key"`
}

// Approvals configures held statements and access grants.
type Approvals struct {
	// Timeout is how long a held statement or request waits (default 10m).
	Timeout time.Duration `yaml:"timeout"`
	// PublicURL is the API address shown in notifications.
	PublicURL string    `yaml:"public_url"`
	Webhooks  []Webhook `yaml:"webhooks"`
}

// Webhook is one approval notification target.
type Webhook struct {
	URL string `yaml:"url"`
	// Format is generic (signed JSON) or slack (incoming-webhook message).
	Format string `yaml:"format"`
	// Secret signs generic payloads (HMAC-SHA256); env:NAME or file:PATH.
	Secret Secret `yaml:"secret"`
}

// MaskingEnabled reports whether masking is on.
func (c *Config) MaskingEnabled() bool { return c.Masking.Enabled == nil || *c.Masking.Enabled }

// Connection is one upstream target.
type Connection struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"` // postgres (later mysql, ssh, http, kubernetes)
	Address  string `yaml:"address"`
	Database string `yaml:"database"`
	// Databases lists every database clients may open on this connection;
	// empty means only Database. The agent refuses any other.
	Databases []string `yaml:"databases"`
	// ReadOnly runs every session on the connection read-only.
	ReadOnly bool `yaml:"read_only"`
	// ReadOnlyFunctions are functions ("schema.name") the administrator
	// declares read-only, so read scope may call them whatever the
	// catalog says of their volatility.
	ReadOnlyFunctions []string `yaml:"read_only_functions"`
	User              string   `yaml:"user"`
	Password          Secret   `yaml:"password"`
	// TLS to the upstream: disable, require, verify-ca, verify-full.
	TLSMode string `yaml:"tls_mode"`
	// CAFile is the CA bundle for verify-ca and verify-full.
	CAFile string `yaml:"ca_file"`
}

// Serves reports whether clients may open database db on the connection:
// the default database, or one listed in Databases.
func (c Connection) Serves(db string) bool {
	if db == "" || db == c.Database {
		return true
	}
	for _, d := range c.Databases {
		if d == db {
			return true
		}
	}
	return false
}

// Defaults.
const (
	DefaultPath     = "gatehouse.yaml"
	DefaultDataDir  = ".gatehouse"
	DefaultAPI      = "127.0.0.1:8080"
	DefaultPostgres = "127.0.0.1:15432"
	DefaultAgents   = "127.0.0.1:8443"
)

// Load reads and checks the config at path. Unknown keys are errors, with
// their line, so a typo never silently drops a setting.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(raw, path)
}

// Parse decodes a config read from path (used to resolve relative paths).
func Parse(raw []byte, path string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, syntaxHint(explainUnknownKeys(err, reflect.TypeOf(c))))
	}
	c.path = path
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Store == "" {
		c.Store = "sqlite"
	}
	if c.Policies == "" {
		c.Policies = "policies"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Audit.Durability == "" {
		c.Audit.Durability = "group"
	}
	if c.Audit.CheckpointEvery == 0 {
		c.Audit.CheckpointEvery = 1000
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = 10 * time.Second
	}
	if c.Audit.UnsignedGrace == 0 {
		// One interval for a checkpoint to come due, and slack for commit
		// and signing time and clock skew between hosts.
		c.Audit.UnsignedGrace = c.Audit.CheckpointInterval + time.Minute
	}
	for i := range c.Connections {
		if c.Connections[i].TLSMode == "" {
			c.Connections[i].TLSMode = "prefer"
		}
	}
	// Relative paths are relative to the config file, so the gateway and
	// admin commands agree whatever directory they run from.
	base := filepath.Dir(c.path)
	c.DataDir = resolvePath(base, c.DataDir)
	switch c.Audit.CheckpointFile {
	case "":
		c.Audit.CheckpointFile = filepath.Join(c.DataDir, "audit-checkpoints.log")
	case CheckpointFileOff:
	default:
		c.Audit.CheckpointFile = resolvePath(base, c.Audit.CheckpointFile)
	}
	c.Policies = resolvePath(base, c.Policies)
	c.Masking.Rules = resolvePath(base, c.Masking.Rules)
	c.TLS.CertFile = resolvePath(base, c.TLS.CertFile)
	c.TLS.KeyFile = resolvePath(base, c.TLS.KeyFile)
	if c.Postgres.MaxMessageBytes == 0 {
		c.Postgres.MaxMessageBytes = 64 << 20
	}
	c.MCP.applyDefaults()
	c.Limits.applyDefaults()
}

func resolvePath(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join(base, p))
	if err != nil {
		return filepath.Join(base, p)
	}
	return abs
}

// Validate checks values that the YAML decoder cannot.
func (c *Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"listen.api": c.Listen.API, "listen.postgres": c.Listen.Postgres, "listen.agents": c.Listen.Agents} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", name, addr))
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not json or text", c.Log.Format))
	}
	switch c.Audit.Durability {
	case "group", "sync":
	default:
		errs = append(errs, fmt.Errorf("audit.durability: %q is not group or sync", c.Audit.Durability))
	}
	if c.Audit.QueueSize < 0 || c.Audit.QueueSize > 1<<24 {
		errs = append(errs, fmt.Errorf("audit.queue_size: %d is not between 1 and %d", c.Audit.QueueSize, 1<<24))
	}
	if c.Audit.CheckpointEvery < 0 || c.Audit.CheckpointInterval < 0 {
		errs = append(errs, errors.New("audit: checkpoint_every and checkpoint_interval must be positive"))
	}
	if c.Audit.UnsignedGrace < c.Audit.CheckpointInterval {
		// A live log would read as tampered between two checkpoints.
		errs = append(errs, fmt.Errorf("audit.unsigned_grace: %s is shorter than checkpoint_interval (%s)", c.Audit.UnsignedGrace, c.Audit.CheckpointInterval))
	}
	if w := c.Audit.WitnessURL; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("audit.witness_url: must be an http(s) URL"))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	if c.Postgres.MaxMessageBytes < 1024 || c.Postgres.MaxMessageBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("postgres.max_message_bytes: %d is not between 1024 and 1 GiB", c.Postgres.MaxMessageBytes))
	}
	if err := c.Agents.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.MCP.validate(c)...)
	if c.Approvals.Timeout < 0 || c.Approvals.Timeout > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("approvals.timeout: %s is not between 0 and 168h", c.Approvals.Timeout))
	}
	for i, w := range c.Approvals.Webhooks {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			errs = append(errs, fmt.Errorf("approvals.webhooks[%d]: url %q must be http(s)", i, w.URL))
		}
		switch w.Format {
		case "", "generic", "slack":
		default:
			errs = append(errs, fmt.Errorf("approvals.webhooks[%d]: format %q is not generic or slack", i, w.Format))
		}
	}
	seen := map[string]bool{}
	for i, conn := range c.Connections {
		where := fmt.Sprintf("connections[%d]", i)
		if conn.Name == "" || strings.ContainsAny(conn.Name, "/@\" \t") {
			errs = append(errs, fmt.Errorf("%s: name %q must be non-empty without '/', '@', quotes or spaces", where, conn.Name))
		}
		if seen[conn.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate connection name %q", where, conn.Name))
		}
		seen[conn.Name] = true
		switch conn.Type {
		case "postgres":
		default:
			errs = append(errs, fmt.Errorf("%s (%s): type %q is not supported (postgres)", where, conn.Name, conn.Type))
		}
		if _, _, err := net.SplitHostPort(conn.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): address %q is not host:port", where, conn.Name, conn.Address))
		}
		switch conn.TLSMode {
		case "disable", "prefer", "require", "verify-ca", "verify-full":
		default:
			errs = append(errs, fmt.Errorf("%s (%s): tls_mode %q is not disable, prefer, require, verify-ca or verify-full", where, conn.Name, conn.TLSMode))
		}
	}
	return errors.Join(errs...)
}

// Path is the file the config was loaded from.
func (c *Config) Path() string { return c.path }

// KeysDir holds signing keys.
func (c *Config) KeysDir() string { return filepath.Join(c.DataDir, "keys") }

// LiteralSecrets names connections whose password is written in the config,
// so the caller can warn.
func (c *Config) LiteralSecrets() []string {
	var out []string
	for _, conn := range c.Connections {
		if conn.Password.IsLiteral() {
			out = append(out, conn.Name)
		}
	}
	return out
}

// SecretProblem is a credential reference that does not resolve: Key
// names the config key, Err says why (never a value).
type SecretProblem struct {
	Key string
	Ref Secret
	Err error
}

// UnresolvedSecrets resolves every credential reference in the config
// (connection passwords, webhook secrets, the masking key) and returns
// those that are empty or unreadable, so `up` and `gateway` can warn at
// start instead of the first client finding out. Secret-manager references
// are left to the resolver plugged in where they are used.
func (c *Config) UnresolvedSecrets() []SecretProblem {
	var out []SecretProblem
	check := func(key string, ref Secret) {
		if ref == "" || ref.IsLiteral() || (ref.Scheme() != "env" && ref.Scheme() != "file") {
			return
		}
		if _, err := ref.Resolve(); err != nil {
			out = append(out, SecretProblem{Key: key, Ref: ref, Err: err})
		}
	}
	for _, conn := range c.Connections {
		check(fmt.Sprintf("connections[%s].password", conn.Name), conn.Password)
	}
	for i, w := range c.Approvals.Webhooks {
		check(fmt.Sprintf("approvals.webhooks[%d].secret", i), w.Secret)
	}
	check("masking.key", c.Masking.Key)
	check("metrics.token", c.Metrics.Token)
	return out
}

// Connection finds a connection by name.
func (c *Config) Connection(name string) (Connection, bool) {
	for _, conn := range c.Connections {
		if conn.Name == name {
			return conn, true
		}
	}
	return Connection{}, false
}
