package sqlguard

import "strings"

// RiskyFunctions are the functions whose call sets FlagRiskyFunction: they
// read or write server files, run SQL given as text (which escapes the table
// analysis), reach other servers, signal backends, change configuration or
// replication state, or touch large objects, which no table policy covers.
// A trailing * matches any suffix. Names are matched without their schema.
// The list is read once, when the package is initialised; it is exported to
// be documented and shown, not changed.
var RiskyFunctions = []string{
	// Server files (docs: functions-admin, "Generic File Access Functions").
	"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
	"pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
	"pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir",
	"pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls", // adminpack
	// Large objects, including lo_import/lo_export of server files.
	"lo_*", "loread", "lowrite",
	// SQL as text, run with the caller's rights but unseen by the analysis.
	"query_to_xml*", "table_to_xml*", "cursor_to_xml*", "schema_to_xml*",
	"database_to_xml*", "ts_stat", "ts_rewrite",
	// Other servers.
	"dblink*",
	// Backends and server state (docs: functions-admin).
	"pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend",
	"set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
	"pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop",
	"pg_start_backup", "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume",
	"pg_log_backend_memory_contexts", "pg_stat_reset*",
	// Other sessions' statements, literals included, in every database, and
	// the server's configuration files, behind the views guardrails forbid.
	"pg_stat_get_activity", "pg_stat_get_backend_*", "pg_show_all_file_settings",
	"pg_hba_file_rules", "pg_ident_file_mappings",
	// Replication slots and origins: logical decoding reads every change.
	"pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
	"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
	"pg_drop_replication_slot", "pg_replication_slot_advance", "pg_logical_slot_*",
	"pg_logical_emit_message", "pg_replication_origin_*",
}

var riskyExact, riskyPrefix = splitRisky(RiskyFunctions)

func splitRisky(names []string) (map[string]bool, []string) {
	exact := make(map[string]bool, len(names))
	var prefix []string
	for _, n := range names {
		if p, ok := strings.CutSuffix(n, "*"); ok {
			prefix = append(prefix, p)
		} else {
			exact[n] = true
		}
	}
	return exact, prefix
}

func isRisky(name string) bool {
	if riskyExact[name] {
		return true
	}
	for _, p := range riskyPrefix {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// CallFlags are the flags a call of the function name sets, for a call the
// engine found behind a view, operator, cast or rule rather than in the
// text.
func CallFlags(name string) []string {
	var out []string
	if isRisky(name) {
		out = append(out, FlagRiskyFunction)
	}
	switch name {
	case "set_config":
		out = append(out, FlagSetConfig)
	case "pg_notify":
		out = append(out, FlagNotify)
	}
	return out
}
