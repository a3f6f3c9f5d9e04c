//! `${plugin_dir}`, `${config.<key>}` and the `$${` escape in `mcp` strings.
//!
//! One parser serves both validation (which keys a string refers to) and
//! expansion, so a string that validated expands the same way.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    PluginDir,
    Config(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// `${` without a closing `}`.
    Unterminated,
    /// `${name}` that is neither `plugin_dir` nor `config.<key>`.
    Unknown(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unterminated => f.write_str("'${' without a closing '}'"),
            Error::Unknown(name) => write!(f, "unknown placeholder '${{{name}}}'"),
        }
    }
}

pub(crate) fn parse(s: &str) -> Result<Vec<Piece<'_>>, Error> {
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            // `$${` is a literal `${`: keep the text up to and including "$"
            // of the pair, drop the other.
            pieces.push(Piece::Text(&rest[..dollar + 1]));
            pieces.push(Piece::Text("{"));
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${") {
            pieces.push(Piece::Text(&rest[..dollar]));
            let end = body.find('}').ok_or(Error::Unterminated)?;
            let name = &body[..end];
            pieces.push(match name {
                "plugin_dir" => Piece::PluginDir,
                _ => match name.strip_prefix("config.") {
                    Some(key) if !key.is_empty() => Piece::Config(key),
                    _ => return Err(Error::Unknown(name.to_owned())),
                },
            });
            rest = &body[end + 1..];
        } else {
            pieces.push(Piece::Text(&rest[..dollar + 1]));
            rest = &after[1..];
        }
    }
    pieces.push(Piece::Text(rest));
    pieces.retain(|p| *p != Piece::Text(""));
    Ok(pieces)
}

/// The config keys `s` refers to.
pub(crate) fn config_keys(s: &str) -> Result<Vec<&str>, Error> {
    Ok(parse(s)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Config(k) => Some(k),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(s: &str) -> String {
        parse(s)
            .unwrap()
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_string(),
                Piece::PluginDir => "<DIR>".into(),
                Piece::Config(k) => format!("<{k}>"),
            })
            .collect()
    }

    #[test]
    fn splits_placeholders_and_text() {
        assert_eq!(render("${plugin_dir}/bin/x"), "<DIR>/bin/x");
        assert_eq!(render("--token=${config.a}${config.b}"), "--token=<a><b>");
        assert_eq!(render("plain"), "plain");
        assert_eq!(render(""), "");
    }

    #[test]
    fn escape_and_lone_dollars_are_literal() {
        assert_eq!(render("$${plugin_dir}"), "${plugin_dir}");
        assert_eq!(render("cost: $5 $$ $"), "cost: $5 $$ $");
        assert_eq!(render("a$$${config.k}"), "a$${config.k}");
        assert_eq!(render("$$${plugin_dir}"), "$${plugin_dir}");
    }

    #[test]
    fn rejects_unknown_and_unterminated() {
        assert_eq!(parse("${home}"), Err(Error::Unknown("home".into())));
        assert_eq!(parse("${config.}"), Err(Error::Unknown("config.".into())));
        assert_eq!(parse("x ${plugin_dir"), Err(Error::Unterminated));
        assert_eq!(
            config_keys("${config.a} ${plugin_dir} ${config.b}").unwrap(),
            ["a", "b"]
        );
    }
}
