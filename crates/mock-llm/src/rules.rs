//! Rules files: behaviours chosen by what the user last wrote.
//!
//! ```json
//! {
//!   "rules": [
//!     {"contains": "deploy", "behaviour": {"type": "tool_use", "name": "Bash", "input": {"command": "echo deploying"}}},
//!     {"starts_with": "slow", "behaviour": {"type": "text", "text": "...", "chunks": 20, "chunk_delay_ms": 200}}
//!   ],
//!   "default": {"type": "text", "text": "I only know about deployments."}
//! }
//! ```
//!
//! A rule matches the last text block of the last user message: `contains` is a
//! case-insensitive substring, `starts_with` a case-sensitive prefix of the text without its
//! leading whitespace; a rule with both needs both. The first matching rule wins. `default`
//! replaces the built-in demo answer (but not the built-in `run ...` and tool-result answers).

use std::path::Path;

use serde::Deserialize;

use crate::{Behaviour, Error};

/// The rules of a rules file; [`Rules::default`] has none, leaving only the built-in answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    rules: Vec<Rule>,
    default: Option<Behaviour>,
}

/// One `{"contains"|"starts_with": ..., "behaviour": ...}` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub starts_with: Option<String>,
    pub behaviour: Behaviour,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rules: Vec<Rule>,
    #[serde(default)]
    default: Option<Behaviour>,
}

impl Rule {
    fn matches(&self, text: &str) -> bool {
        let contains = self
            .contains
            .as_ref()
            .is_none_or(|needle| text.to_lowercase().contains(&needle.to_lowercase()));
        let starts_with = self
            .starts_with
            .as_ref()
            .is_none_or(|prefix| text.trim_start().starts_with(prefix.as_str()));
        contains && starts_with
    }
}

impl Rules {
    /// Reads and checks a rules file.
    pub fn from_path(path: &Path) -> Result<Rules, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadRules {
            path: path.to_owned(),
            source,
        })?;
        Rules::from_json(&text).map_err(|reason| Error::InvalidRules {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses the text of a rules file; the error names the problem and where it is.
    pub fn from_json(text: &str) -> Result<Rules, String> {
        let file: File = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(i) = file
            .rules
            .iter()
            .position(|r| r.contains.is_none() && r.starts_with.is_none())
        {
            return Err(format!(
                "rule {i} has neither `contains` nor `starts_with`; use `default` for a catch-all"
            ));
        }
        Ok(Rules {
            rules: file.rules,
            default: file.default,
        })
    }

    /// Rules built in code, e.g. by a test.
    pub fn new(rules: Vec<Rule>, default: Option<Behaviour>) -> Rules {
        Rules { rules, default }
    }

    /// The index and behaviour of the first rule matching `text`.
    pub(crate) fn find(&self, text: &str) -> Option<(usize, &Behaviour)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(text))
            .map(|(i, r)| (i, &r.behaviour))
    }

    pub(crate) fn default_behaviour(&self) -> Option<&Behaviour> {
        self.default.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins_and_matching_rules_are_documented() {
        let rules = Rules::from_json(
            r#"{"rules":[
                {"contains":"DePloy","behaviour":{"type":"text","text":"one"}},
                {"starts_with":"slow","behaviour":{"type":"text","text":"two"}},
                {"contains":"x","starts_with":"y","behaviour":{"type":"text","text":"three"}}
            ]}"#,
        )
        .unwrap();
        let hit = |t: &str| rules.find(t).map(|(i, _)| i);
        assert_eq!(hit("please deploy now"), Some(0));
        assert_eq!(hit("slow and deploy"), Some(0));
        assert_eq!(hit("  slow please"), Some(1));
        assert_eq!(hit("Slow please"), None);
        assert_eq!(hit("yx"), Some(2));
        assert_eq!(hit("x y"), None);
        assert_eq!(rules.default_behaviour(), None);
    }

    #[test]
    fn errors_say_what_and_where() {
        let syntax = Rules::from_json("{\"rules\": [\n  {\"contains\": \"a\",}\n]}").unwrap_err();
        assert!(syntax.contains("line 2"), "{syntax}");
        let behaviour = Rules::from_json(
            "{\"rules\": [\n {\"contains\": \"a\", \"behaviour\": {\"type\": \"txt\"}}\n]}",
        )
        .unwrap_err();
        assert!(
            behaviour.contains("unknown variant `txt`") && behaviour.contains("line 2"),
            "{behaviour}"
        );
        let catch_all =
            Rules::from_json(r#"{"rules":[{"behaviour":{"type":"text"}}]}"#).unwrap_err();
        assert!(catch_all.contains("rule 0 has neither"), "{catch_all}");
        let extra = Rules::from_json(r#"{"rules":[],"defualt":null}"#).unwrap_err();
        assert!(extra.contains("unknown field `defualt`"), "{extra}");
    }
}
