//! SQL with its literals redacted: quoted strings and numbers become `?`, comments
//! go, whitespace runs become one space. The redacted text is the query's shape:
//! its hash is the query fingerprint, and it is the SQL OpenLineage events carry
//! (the audit log, for stewards, keeps the literals).
//!
//! A scan over the text, not a parse: it knows SQL's quoting (`'…'` with `''`,
//! `E'…'` with backslash escapes, `$tag$…$tag$`, `"…"` and `` `…` `` identifiers,
//! which stay) and comments (`--`, nested `/* */`), so a quote inside a comment or an
//! identifier never starts a literal. Placeholders (`$1`) and identifiers with digits
//! (`o_year2`) stay.

use sha2::{Digest, Sha256};

/// `sql` with literals replaced by `?`, comments removed and whitespace collapsed.
pub fn redact(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    // A space is owed before the next token (whitespace or a comment was skipped).
    let mut space = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        if c.is_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            space = true;
            continue;
        }
        if c == '/' && next == Some('*') {
            i = block_comment_end(&chars, i);
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        match c {
            '\'' => {
                i = quoted_end(&chars, i + 1, '\'', false);
                out.push('?');
            }
            '"' | '`' => {
                i = quoted_end(&chars, i + 1, c, false);
                out.extend(&chars[start..i]);
            }
            'e' | 'E' if next == Some('\'') && !ident_before(&chars, i) => {
                i = quoted_end(&chars, i + 2, '\'', true);
                out.push('?');
            }
            'x' | 'X' | 'b' | 'B' | 'n' | 'N' | 'r' | 'R' if next == Some('\'') && !ident_before(&chars, i) => {
                i = quoted_end(&chars, i + 2, '\'', false);
                out.push('?');
            }
            '$' => match dollar_tag(&chars, i) {
                Some(tag_len) => {
                    i = dollar_quoted_end(&chars, i, tag_len);
                    out.push('?');
                }
                None => {
                    // A placeholder ($1) or a lone dollar: kept, digits included.
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    out.extend(&chars[start..i]);
                }
            },
            c if c.is_ascii_digit() && !ident_before(&chars, i) => {
                i = number_end(&chars, i);
                out.push('?');
            }
            '.' if next.is_some_and(|d| d.is_ascii_digit()) && !ident_before(&chars, i) => {
                i = number_end(&chars, i);
                out.push('?');
            }
            c if is_ident(c) => {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                out.extend(&chars[start..i]);
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// SHA-256 (lower-case hex) of the redacted text: the query's fingerprint.
pub fn fingerprint(redacted: &str) -> String {
    hex(&Sha256::digest(redacted.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    text
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the character before `i` continues an identifier (so a digit at `i` is
/// part of a name, not a number).
fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == '$')
}

/// The index after the closing `quote` of a literal whose body starts at `i`; a
/// doubled quote is an escaped one, and with `backslash` so is `\'`. Unterminated:
/// the end of the text.
fn quoted_end(chars: &[char], mut i: usize, quote: char, backslash: bool) -> usize {
    while i < chars.len() {
        let c = chars[i];
        if backslash && c == '\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// The index after a (nested) block comment starting at `i`.
fn block_comment_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    chars.len()
}

/// The length of a dollar-quote opening tag (`$$`, `$tag$`) at `i`, if one is there.
fn dollar_tag(chars: &[char], i: usize) -> Option<usize> {
    if ident_before(chars, i) {
        return None;
    }
    let mut j = i + 1;
    if chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    (chars.get(j) == Some(&'$')).then_some(j + 1 - i)
}

/// The index after the closing tag of a dollar-quoted string opened at `i`.
fn dollar_quoted_end(chars: &[char], i: usize, tag_len: usize) -> usize {
    let tag = &chars[i..i + tag_len];
    let mut j = i + tag_len;
    while j + tag_len <= chars.len() {
        if &chars[j..j + tag_len] == tag {
            return j + tag_len;
        }
        j += 1;
    }
    chars.len()
}

/// The index after a number starting at `i`: digits, a fraction, an exponent, or a
/// hex/binary/octal literal (`0x1F`), digit separators (`1_000`) included.
fn number_end(chars: &[char], mut i: usize) -> usize {
    if chars[i] == '0' && chars.get(i + 1).is_some_and(|c| matches!(c, 'x' | 'X' | 'b' | 'B' | 'o' | 'O')) {
        i += 2;
        while i < chars.len() && (chars[i].is_ascii_hexdigit() || chars[i] == '_') {
            i += 1;
        }
        return i;
    }
    let digits = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_ascii_digit() || chars[*i] == '_') {
            *i += 1;
        }
    };
    digits(&mut i);
    if chars.get(i) == Some(&'.') {
        i += 1;
        digits(&mut i);
    }
    if chars.get(i).is_some_and(|c| matches!(c, 'e' | 'E')) {
        let mut j = i + 1;
        if chars.get(j).is_some_and(|c| matches!(c, '+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            i = j;
            digits(&mut i);
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_become_placeholders() {
        assert_eq!(
            redact("SELECT o_orderkey FROM sales.orders WHERE o_orderdate >= DATE '1997-01-01' AND o_totalprice > 1e5"),
            "SELECT o_orderkey FROM sales.orders WHERE o_orderdate >= DATE ? AND o_totalprice > ?"
        );
        assert_eq!(redact("SELECT 'it''s', 12.5, .5, 3., -7, 0x1F, 1_000"), "SELECT ?, ?, ?, ?, -?, ?, ?");
        assert_eq!(redact("SELECT E'a\\'b', X'0A', N'x'"), "SELECT ?, ?, ?");
        assert_eq!(redact("SELECT $$a 'b'$$, $t$c$t$ || 'd'"), "SELECT ?, ? || ?");
        assert_eq!(redact("SELECT interval '1 day' * 2"), "SELECT interval ? * ?");
    }

    #[test]
    fn identifiers_placeholders_and_quoted_names_stay() {
        assert_eq!(
            redact(r#"SELECT o_year2, "Col 1", `x'y`, t1.c FROM t1 WHERE a = $1 AND b = $2"#),
            r#"SELECT o_year2, "Col 1", `x'y`, t1.c FROM t1 WHERE a = $1 AND b = $2"#
        );
        assert_eq!(redact(r#"SELECT "it""s 'no' literal" FROM t"#), r#"SELECT "it""s 'no' literal" FROM t"#);
    }

    #[test]
    fn comments_go_and_whitespace_collapses() {
        let a = redact("SELECT a -- the 'secret' 42\n  FROM t /* note 'x' /* nested 7 */ */ WHERE b = 'y'");
        assert_eq!(a, "SELECT a FROM t WHERE b = ?");
        let b = redact("  SELECT  a\n\tFROM t WHERE b = 'z'  ");
        assert_eq!(b, "SELECT a FROM t WHERE b = ?");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&redact("SELECT a FROM t WHERE c = 'z'")));
        assert_eq!(fingerprint(&a).len(), 64);
    }

    #[test]
    fn unterminated_literals_are_redacted_to_the_end() {
        assert_eq!(redact("SELECT 'open"), "SELECT ?");
        assert_eq!(redact("SELECT $$open"), "SELECT ?");
        assert_eq!(redact("SELECT 1 /* open"), "SELECT ?");
        assert_eq!(redact(""), "");
        assert_eq!(redact("SELECT 'é', 'ünï' FROM t"), "SELECT ?, ? FROM t");
    }
}
