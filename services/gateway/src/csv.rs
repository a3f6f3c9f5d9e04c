//! CSV uploads of context data (`Content-Type: text/csv` on the
//! knowledge-base and inventory routes), read into the same JSON rows the
//! JSON bodies carry so one check applies to both: RFC 4180 (comma-separated,
//! fields in double quotes may hold commas, line breaks and doubled quotes;
//! CRLF or LF), a header row naming the columns, a UTF-8 byte-order mark
//! ignored. Every error names the row (the file's line, the header being
//! row 1) and, where it is about one, the column.

use serde_json::{Map, Value};

/// The most data rows one upload may hold (the tickets service takes as
/// many per call).
pub(crate) const MAX_ROWS: usize = 10_000;

/// A parsed file: its header and its data rows, each with its row number.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<(usize, Vec<String>)>,
}

/// Splits `text` into records of fields, each with the row it starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut row = 1;
    let mut start = 1;
    // Whether the current field began with a quote, and whether it is still
    // inside it.
    let (mut quoted, mut inside) = (false, false);
    // A record has begun (a blank line is no record).
    let mut begun = false;
    while let Some(c) = chars.next() {
        if inside {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => inside = false,
                '\n' => {
                    row += 1;
                    field.push('\n');
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                quoted = true;
                inside = true;
                begun = true;
            }
            '"' => {
                return Err(format!(
                    "row {row}: a quote inside an unquoted field (put the field in quotes and double the quote)"
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
                begun = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if begun || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut fields)));
                }
                quoted = false;
                begun = false;
                row += 1;
                start = row;
            }
            c if quoted => {
                return Err(format!(
                    "row {row}: '{c}' after a closing quote (a quoted field ends at its quote)"
                ));
            }
            c => {
                field.push(c);
                begun = true;
            }
        }
        if out.len() > MAX_ROWS + 1 {
            return Err(format!("Upload at most {MAX_ROWS} rows at a time."));
        }
    }
    if inside {
        return Err(format!("row {start}: a quoted field is not closed"));
    }
    if begun || !field.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

/// `body` as a table with a header row.
pub(crate) fn parse(body: &[u8]) -> Result<Table, String> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("row {line}: the file is not UTF-8 text (save it as CSV UTF-8)")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = records(text)?.into_iter();
    let (_, header) = records
        .next()
        .ok_or("The file is empty: send a header row and a row per record.")?;
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
    if let Some(i) = header.iter().position(String::is_empty) {
        return Err(format!("row 1: column {} has no name", i + 1));
    }
    for (i, name) in header.iter().enumerate() {
        if header[..i].contains(name) {
            return Err(format!("row 1: column {name} appears twice"));
        }
    }
    let rows: Vec<(usize, Vec<String>)> = records.collect();
    if rows.len() > MAX_ROWS {
        return Err(format!("Upload at most {MAX_ROWS} rows at a time."));
    }
    for (row, fields) in &rows {
        if fields.len() != header.len() {
            return Err(format!(
                "row {row}: {} fields where the header has {} columns",
                fields.len(),
                header.len()
            ));
        }
    }
    Ok(Table { header, rows })
}

impl Table {
    /// Each row as a JSON object of its non-empty cells by column name (an
    /// empty cell is an absent field), with its row number.
    pub(crate) fn objects(self) -> impl Iterator<Item = (usize, Map<String, Value>)> {
        let header = self.header;
        self.rows.into_iter().map(move |(row, fields)| {
            let obj = header
                .iter()
                .zip(fields)
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| (k.clone(), Value::String(v)))
                .collect();
            (row, obj)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &Table) -> Vec<(usize, Vec<&str>)> {
        t.rows
            .iter()
            .map(|(n, f)| (*n, f.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        let t = parse(
            b"\xef\xbb\xbfip,hostname,role\r\n10.0.0.1,db1,\"Database, primary\"\r\n\r\n\
              10.0.0.2,\"web \"\"edge\"\"\",\"two\nlines\"\n10.0.0.3,x,",
        )
        .unwrap();
        assert_eq!(t.header, ["ip", "hostname", "role"]);
        assert_eq!(
            rows(&t),
            [
                (2, vec!["10.0.0.1", "db1", "Database, primary"]),
                (4, vec!["10.0.0.2", "web \"edge\"", "two\nlines"]),
                (6, vec!["10.0.0.3", "x", ""]),
            ]
        );
        let objects: Vec<_> = t.objects().collect();
        assert_eq!(objects[2].0, 6);
        assert!(!objects[2].1.contains_key("role"), "empty cells are absent");
    }

    #[test]
    fn bad_files_name_the_row() {
        for (body, want) in [
            (&b""[..], "The file is empty"),
            (
                b"ip,hostname\n10.0.0.1\n",
                "row 2: 1 fields where the header has 2 columns",
            ),
            (b"ip,hostname\n10.0.0.1,a,b\n", "row 2: 3 fields"),
            (b"ip,\n", "row 1: column 2 has no name"),
            (b"ip,ip\n", "row 1: column ip appears twice"),
            (
                b"ip,hostname\n1,\"open\n",
                "row 2: a quoted field is not closed",
            ),
            (
                b"ip,hostname\n1,a\"b\n",
                "row 2: a quote inside an unquoted field",
            ),
            (
                b"ip,hostname\n1,\"a\"b\n",
                "row 2: 'b' after a closing quote",
            ),
            (b"ip,hostname\n1,\xff\n", "row 2: the file is not UTF-8"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(
                e.starts_with(want),
                "{:?}: {e}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn too_many_rows_are_refused() {
        let mut body = String::from("ip,hostname\n");
        for i in 0..=MAX_ROWS {
            body.push_str(&format!("10.0.{}.{},h{i}\n", i / 256, i % 256));
        }
        assert_eq!(
            parse(body.as_bytes()).unwrap_err(),
            format!("Upload at most {MAX_ROWS} rows at a time.")
        );
    }
}

/// Whatever is uploaded, [`parse`] answers a table or an error naming the
/// row (or what is wrong with the whole file), never a panic; a table
/// written as RFC 4180 reads back as itself.
#[cfg(test)]
mod properties {
    use super::*;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;
    use proptest::sample::Index;

    fn checked(body: &[u8]) -> Result<Table, String> {
        let result = parse(body);
        if let Err(e) = &result {
            assert!(!e.trim().is_empty());
            if let Some(rest) = e.strip_prefix("row ") {
                let n: usize = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{e:?} names no row"));
                let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!((1..=lines).contains(&n), "{e:?} of {lines} lines");
            } else {
                assert!(
                    e.starts_with("The file is empty") || e.starts_with("Upload at most"),
                    "{e:?}"
                );
            }
        }
        result
    }

    /// `fields` as one RFC 4180 record; quoted where needed, or always.
    fn record(fields: &[String], always: bool) -> String {
        fields
            .iter()
            .map(|f| {
                if always || f.is_empty() || f.contains([',', '"', '\n', '\r']) || f.trim() != f {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
        prop::collection::btree_set("[a-z_][a-z0-9_ ]{0,10}[a-z0-9_]", 1..6).prop_flat_map(
            |names| {
                let header: Vec<String> = names.into_iter().collect();
                let n = header.len();
                let field =
                    prop_oneof!["\\PC{0,12}", "[a-z ,\"\\r\\n]{0,12}", Just(String::new()),];
                (
                    Just(header),
                    prop::collection::vec(prop::collection::vec(field, n..=n), 0..8),
                )
            },
        )
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn arbitrary_bytes_are_a_table_or_an_error_naming_the_row(
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let _ = checked(&body);
        }

        #[test]
        fn csv_like_text_is_a_table_or_an_error_naming_the_row(
            body in "[a-z,\"\\r\\n \u{feff}é]{0,300}",
        ) {
            let _ = checked(body.as_bytes());
        }

        #[test]
        fn a_written_table_reads_back(
            (header, rows) in table(),
            always in any::<bool>(),
            crlf in any::<bool>(),
            bom in any::<bool>(),
            final_newline in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::from(if bom { "\u{feff}" } else { "" });
            text.push_str(&record(&header, always));
            // Each record starts on the line after the last one's newlines.
            let mut line = 1 + 1;
            let mut expected = Vec::new();
            for fields in &rows {
                text.push_str(eol);
                text.push_str(&record(fields, always));
                expected.push((line, fields.clone()));
                line += 1 + fields.iter().map(|f| f.matches('\n').count()).sum::<usize>();
            }
            if final_newline {
                text.push_str(eol);
            }
            let table = checked(text.as_bytes()).unwrap();
            prop_assert_eq!(table, Table { header, rows: expected });
        }

        #[test]
        fn a_mutated_table_never_panics(
            (header, rows) in table(),
            edits in prop::collection::vec(
                (any::<Index>(), prop::sample::select(vec![b'"', b',', b'\n', b'\r', b'x', 0xff, 0xc3])),
                1..4,
            ),
        ) {
            let mut text = record(&header, false);
            for fields in &rows {
                text.push('\n');
                text.push_str(&record(fields, false));
            }
            let mut bytes = text.into_bytes();
            for (at, b) in edits {
                let i = at.index(bytes.len() + 1);
                bytes.insert(i, b);
            }
            let _ = checked(&bytes);
        }
    }
}
