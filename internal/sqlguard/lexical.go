package sqlguard

// Robust reports whether PostgreSQL reads sql the same way whatever a
// session's lexical settings are: standard_conforming_strings on or off,
// any client_encoding, any backslash_quote. The analysis parses as the
// server does with standard_conforming_strings=on in UTF-8; a text that is
// pure ASCII and has no backslash lexes identically under every setting:
//
//   - standard_conforming_strings only changes what a backslash does inside
//     '…' and N'…' literals (with it off they act as E'…');
//   - every client encoding PostgreSQL supports is a superset of ASCII, so a
//     byte below 0x80 that is not the trail byte of a multibyte character
//     is the same ASCII character; the trail bytes of SJIS, BIG5, GBK, UHC
//     and GB18030 (0x30–0x7E) include the backslash but never a quote, a
//     semicolon, a dash, a slash, a star or a dollar, and only follow a lead
//     byte of 0x80 or above;
//   - backslash_quote only decides whether \' is accepted, which needs a
//     backslash.
//
// The engine forwards a text that is not Robust only when it knows the
// session's settings are the ones the analysis assumes (docs/security.md).
func Robust(sql string) bool {
	for i := 0; i < len(sql); i++ {
		if c := sql[i]; c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}
