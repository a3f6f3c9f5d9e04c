//! What a full-text search looks for: the words of a text, and of those
//! the few that find similar rows fast.
//!
//! A new ticket's text is mostly common words ("user", "error", "printer"
//! are in most of a help desk's history). Any-of-all-its-words matched
//! nearly every row of a 100k-ticket history and ranked them all: 1.1 s at
//! p99 (`csp-bench search`). So the search asks the index how common each
//! word is ([`crate::dialect::Frequencies`]) and plans a query whose
//! expected matches stay within [`BUDGET`] of the table: the rarest words
//! alone when they are rare enough, else pairs of them (both words in one
//! ticket), else triples. Rows sharing rare words are the similar ones, so
//! this is also the better answer, not only the faster one. Small tables
//! (and tables the database has no statistics for yet) are searched with
//! every word, as before: there, every word is cheap.

use crate::dialect::Frequencies;

/// Words that say nothing about a ticket: Postgres' `english` stop words
/// (`tsearch_data/english.stop`). Postgres drops them itself; FTS5 has no
/// such list, so the store drops them for both.
const STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

/// At most this many distinct words of a text are searched for: a ticket's
/// first words say what it is about, and every word is one more index scan.
const MAX_SEARCH_WORDS: usize = 64;
/// Longer "words" are encoded blobs or hashes, not language.
const MAX_WORD_CHARS: usize = 64;

/// The words of `text` a full-text search looks for: runs of letters and
/// digits, lower-cased, without stop words, each once, in order. Nothing
/// else survives, so no character of the user's text is query syntax on
/// either database; an empty list means nothing to search for.
pub(crate) fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || word.chars().count() > MAX_WORD_CHARS {
            continue;
        }
        let word = word.to_lowercase();
        if STOP_WORDS.contains(&word.as_str()) || words.contains(&word) {
            continue;
        }
        words.push(word);
        if words.len() == MAX_SEARCH_WORDS {
            break;
        }
    }
    words
}

/// Tables with fewer rows than this (every tenant together) are searched
/// with every word of the text: cheap at that size, and most complete.
pub(crate) const SMALL_TABLE_ROWS: f64 = 10_000.0;
/// Of a text's words, the rarest this many make up the query.
const RARE_WORDS: usize = 8;
/// The query's expected matches, as a share of the table's rows: 0.3 %,
/// some 300 tickets of a 100k history, ranked in a few milliseconds (the
/// ranking, which reads every matching row, is most of a search's time;
/// 1 % measured 14 ms at p99 on the 2-core box, `csp-bench search`).
pub(crate) const BUDGET: f64 = 0.003;
/// A word the statistics do not list as common is rarer than those they
/// list; counted as this share.
const UNLISTED: f64 = 0.0005;
/// Groups of up to this many words (all of them in a row).
const MAX_GROUP: usize = 3;

/// The query for `words` (the text's search words, in order) given how
/// common each is: any of the returned groups, a group matching when all
/// its words are in a row. Empty only when `words` is.
pub(crate) fn plan(words: Vec<String>, frequencies: &Frequencies) -> Vec<Vec<String>> {
    let known = frequencies.of_words.iter().any(Option::is_some);
    if frequencies.table_rows < SMALL_TABLE_ROWS || !known {
        return words.into_iter().map(|word| vec![word]).collect();
    }
    let mut ranked: Vec<(String, f64)> = words
        .into_iter()
        .zip(
            frequencies
                .of_words
                .iter()
                .copied()
                .chain(std::iter::repeat(None)),
        )
        .map(|(word, share)| (word, share.filter(|s| *s > 0.0).unwrap_or(UNLISTED)))
        .collect();
    // Stable: among equally rare words the text's first (its subject) win.
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    ranked.truncate(RARE_WORDS);
    for size in 1..=MAX_GROUP.min(ranked.len()) {
        let mut groups = combinations(&ranked, size);
        groups.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut expected = 0.0;
        let mut chosen = Vec::new();
        for (group, share) in groups {
            if expected + share > BUDGET {
                break;
            }
            expected += share;
            chosen.push(group);
        }
        if !chosen.is_empty() {
            return chosen;
        }
    }
    // Even the rarest words together are common: search for all of them.
    vec![
        ranked
            .into_iter()
            .take(MAX_GROUP)
            .map(|(word, _)| word)
            .collect(),
    ]
}

/// Every `size`-word group of `ranked` (in order) with its expected share
/// of rows (the words taken as independent).
fn combinations(ranked: &[(String, f64)], size: usize) -> Vec<(Vec<String>, f64)> {
    let mut out = Vec::new();
    let mut pick = (0..size).collect::<Vec<_>>();
    if size == 0 || size > ranked.len() {
        return out;
    }
    loop {
        out.push((
            pick.iter().map(|&i| ranked[i].0.clone()).collect(),
            pick.iter().map(|&i| ranked[i].1).product(),
        ));
        // Next combination in lexicographic order.
        let Some(i) = (0..size).rev().find(|&i| pick[i] < ranked.len() - size + i) else {
            return out;
        };
        pick[i] += 1;
        for j in i + 1..size {
            pick[j] = pick[j - 1] + 1;
        }
    }
}

/// `word`'s Porter stem, as SQLite's `porter` tokenizer stores it (Martin
/// Porter's reference implementation, which FTS5 follows).
pub(crate) fn porter_stem(word: &str) -> String {
    use std::sync::LazyLock;
    static STEMMER: LazyLock<nltk_porter::PorterStemmer> =
        LazyLock::new(|| nltk_porter::PorterStemmer::new(nltk_porter::Mode::Martin));
    STEMMER.stem(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_letters_and_digits_without_stop_words() {
        assert_eq!(
            search_words("The DISK is full: disk /dev/sda1 \"quoted\" OR NOT (x) naïve 10.0.0.1"),
            vec![
                "disk", "full", "dev", "sda1", "quoted", "x", "naïve", "10", "0", "1"
            ]
        );
        for nothing in ["", "  ", "!!! ??? ---", "the and of", "\"*:&|!()'\\"] {
            assert_eq!(search_words(nothing), Vec::<String>::new(), "{nothing:?}");
        }
    }

    #[test]
    fn search_words_are_bounded() {
        let many: String = (0..200).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_words(&many).len(), MAX_SEARCH_WORDS);
        let long = "a".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(search_words(&format!("{long} disk")), vec!["disk"]);
    }

    #[test]
    fn stop_words_are_lower_case_and_unique() {
        for (i, word) in STOP_WORDS.iter().enumerate() {
            assert_eq!(word.to_lowercase(), *word);
            assert!(!STOP_WORDS[..i].contains(word), "{word}");
        }
        assert_eq!(STOP_WORDS.len(), 127);
    }

    fn frequencies(rows: f64, of: &[Option<f64>]) -> Frequencies {
        Frequencies {
            table_rows: rows,
            of_words: of.to_vec(),
        }
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    fn groups(list: &[&[&str]]) -> Vec<Vec<String>> {
        list.iter().map(|g| words(g)).collect()
    }

    #[test]
    fn small_or_unanalysed_tables_are_searched_with_every_word() {
        let text = words(&["user", "printer", "jam"]);
        let every = groups(&[&["user"], &["printer"], &["jam"]]);
        let common = [Some(0.9), Some(0.5), Some(0.3)];
        assert_eq!(plan(text.clone(), &frequencies(5_000.0, &common)), every);
        assert_eq!(plan(text, &frequencies(1e6, &[None, None, None])), every);
    }

    #[test]
    fn rare_words_alone_when_they_fit_the_budget() {
        let text = words(&["user", "srv", "printer", "kx500", "jam"]);
        let of = [Some(0.9), Some(0.0), Some(0.5), Some(0.002), Some(0.03)];
        // srv (unlisted: 0.05 %) and kx500 (0.2 %) fit 0.3 %; jam (3 %) not.
        assert_eq!(
            plan(text, &frequencies(1e6, &of)),
            groups(&[&["srv"], &["kx500"]])
        );
    }

    #[test]
    fn common_words_are_paired_then_grouped_in_threes() {
        let text = words(&["user", "error", "vpn", "jitter"]);
        // No word alone fits 0.3 %; pairs (rarest words first, the text's
        // order among equals): vpn·jitter 0.0009 and vpn·error 0.0015 fit
        // (0.0024), jitter·error 0.0015 would not.
        let of = [Some(0.9), Some(0.05), Some(0.03), Some(0.03)];
        assert_eq!(
            plan(text, &frequencies(1e6, &of)),
            groups(&[&["vpn", "jitter"], &["vpn", "error"]])
        );
        // Every word in 60 %+ of rows: triples.
        let text = words(&["a1", "b2", "c3"]);
        let of = [Some(0.6), Some(0.7), Some(0.8)];
        assert_eq!(
            plan(text, &frequencies(1e6, &of)),
            groups(&[&["a1", "b2", "c3"]])
        );
    }

    #[test]
    fn at_most_the_rarest_words_make_the_query() {
        let text: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let of: Vec<Option<f64>> = (0..40).map(|i| Some(0.0001 * f64::from(40 - i))).collect();
        let planned = plan(text, &frequencies(1e6, &of));
        let used: Vec<&str> = planned.iter().flatten().map(String::as_str).collect();
        assert!(used.len() <= RARE_WORDS, "{used:?}");
        assert!(used.contains(&"w39") && !used.contains(&"w0"), "{used:?}");
    }

    #[test]
    fn combinations_are_all_groups_in_order() {
        let ranked: Vec<(String, f64)> = [("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4)]
            .iter()
            .map(|(w, f)| ((*w).to_owned(), *f))
            .collect();
        let pairs: Vec<Vec<String>> = combinations(&ranked, 2)
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        assert_eq!(
            pairs,
            groups(&[
                &["a", "b"],
                &["a", "c"],
                &["a", "d"],
                &["b", "c"],
                &["b", "d"],
                &["c", "d"]
            ])
        );
        assert_eq!(combinations(&ranked, 4).len(), 1);
        assert!(combinations(&ranked, 5).is_empty());
        assert!((combinations(&ranked, 3)[0].1 - 0.006).abs() < 1e-12);
    }
}
