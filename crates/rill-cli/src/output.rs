//! Tables for people, JSON for scripts, and writing to a stdout that may
//! be a closed pipe.

use std::io::Write;

use clap::ValueEnum;

/// How listing commands print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object built field by field; values are written as given.
#[derive(Debug, Default)]
pub struct JsonObject {
    text: String,
}

impl JsonObject {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        json_str(&mut self.text, key);
        self.text.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        json_str(&mut self.text, value);
        self
    }

    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => json_str(&mut self.text, v),
            None => self.text.push_str("null"),
        }
        self
    }

    /// A number or any other already-encoded JSON value.
    pub fn raw(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.key(key);
        self.text.push_str(&value.to_string());
        self
    }

    pub fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push('}');
        self.text
    }
}

/// `[a,b,c]` of already-encoded JSON values.
pub fn json_array(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    format!("[{}]", items.join(","))
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Writes `text` to stdout. A closed pipe surfaces as an `io::Error` of
/// kind `BrokenPipe`, which `main` turns into a quiet exit 0.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes `text` to stderr, ignoring failure: a message that cannot be
/// shown (stderr closed, or a pipe whose reader left) must not panic or
/// change the outcome.
pub fn eprint(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// The command was stopped by ctrl-c (exit status 130, as a shell reports
/// SIGINT) after saying what it had done.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Whether the error (or any cause) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_json_requires() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\te\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\te\u0001é""#);
        let obj = JsonObject::new()
            .str("name", "x")
            .raw("n", 3)
            .opt_str("k", None)
            .finish();
        assert_eq!(obj, r#"{"name":"x","n":3,"k":null}"#);
        assert_eq!(JsonObject::new().finish(), "{}");
        assert_eq!(json_array(vec!["1".into(), "2".into()]), "[1,2]");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["NAME", "PARTITIONS"],
            &[
                vec!["a-long-name".into(), "1".into()],
                vec!["b".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME         PARTITIONS\na-long-name  1\nb            12\n"
        );
    }
}
