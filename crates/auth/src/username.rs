//! Usernames as people see them: one spelling per name, and no two names
//! that look alike.
//!
//! A username is stored and looked up in Unicode NFKC, so a fullwidth
//! "ａｄｍｉｎ" or a ligature "ﬁ" typed at login is the same name as the
//! ASCII one (the store then ignores case). Two names are [`confusable`]
//! when their Unicode TR39 skeletons are equal, either after lowercasing
//! ([`confusable_key`]: "admin", "ADMIN", Cyrillic "аdmin", "adrnin" with
//! "rn" for "m") or as written ("Iron" and "lron", whose capital I only
//! looks like an l before it is lowercased).

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// The stored and looked-up form of a username: NFKC.
pub fn normalize(name: &str) -> String {
    name.nfkc().collect()
}

/// TR39 `skeleton(lowercase(NFKC(name)))`: equal for names that differ
/// only in case or in look-alike letters. Keys login throttling, so every
/// spelling of an account shares its counter. Not for display or storage.
pub fn confusable_key(name: &str) -> String {
    skeleton(&normalize(name).to_lowercase()).collect()
}

/// Whether a reader could mistake `a` for `b`: equal [`confusable_key`]s,
/// or equal skeletons of the names as written.
pub fn confusable(a: &str, b: &str) -> bool {
    confusable_key(a) == confusable_key(b) || skeleton(&normalize(a)).eq(skeleton(&normalize(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_folds_compatibility_forms() {
        assert_eq!(normalize("ａｄｍｉｎ"), "admin");
        assert_eq!(normalize("ﬁona"), "fiona");
        assert_eq!(normalize("ada"), "ada");
        // Composed and decomposed "é" are one name.
        assert_eq!(normalize("jose\u{301}"), normalize("jos\u{e9}"));
    }

    #[test]
    fn look_alikes_share_a_key() {
        let admin = confusable_key("admin");
        for alike in [
            "Admin",
            "ADMIN",
            "\u{430}dmin",   // Cyrillic а
            "\u{410}DMIN",   // Cyrillic А
            "adm\u{456}n",   // Cyrillic і
            "ａｄｍｉｎ",    // fullwidth
            "adrnin",        // rn for m
            "\u{1d41a}dmin", // mathematical bold a
        ] {
            assert_eq!(confusable_key(alike), admin, "{alike}");
        }
        assert!(confusable("ad0", "adO"));
        assert!(confusable("lron", "Iron"));
        assert!(confusable("admin", "\u{430}DMIN"));
    }

    #[test]
    fn different_names_differ() {
        let admin = confusable_key("admin");
        for other in ["admins", "amin", "root", "ada", "adm1n-x"] {
            assert_ne!(confusable_key(other), admin, "{other}");
        }
        assert_ne!(confusable_key("alice"), confusable_key("bob"));
        assert!(!confusable("alice", "bob"));
        assert!(!confusable("admin", "admins"));
    }
}
