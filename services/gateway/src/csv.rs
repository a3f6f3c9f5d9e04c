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
