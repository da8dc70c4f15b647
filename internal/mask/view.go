package mask

// MasksNothing reports whether this view leaves every value unchanged, so
// an engine can skip per-value work altogether.
func (m *Masker) MasksNothing() bool { return m.passAll }

// HasColumnRules reports whether any column rule exists, so an engine only
// looks up column names when a rule could match them.
func (m *Masker) HasColumnRules() bool { return len(m.sh.columns) > 0 }
