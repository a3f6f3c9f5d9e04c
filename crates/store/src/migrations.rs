//! The schema, embedded in the binary so that a store migrates its database
//! on connect with no files beside the binary.
//!
//! Built at runtime instead of with `sqlx::migrate!`: that macro needs sqlx's
//! `macros` feature, which compiles sqlx and SQLite a second time for the
//! proc-macro (about 10 % of a cold build), to do what a list of
//! `include_str!`s does.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// `(file name, contents)` of each migration; the file name is
/// `<version>_<description>.sql`. A unit test checks this list against the
/// directory, so a new file cannot be forgotten here.
type Embedded = &'static [(&'static str, &'static str)];

macro_rules! embed {
    ($backend:literal: $($file:literal),+ $(,)?) => {
        &[$((
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $backend, "/", $file)),
        )),+]
    };
}

pub(crate) const POSTGRES: Embedded = embed!("postgres": "0001_init.sql");
pub(crate) const SQLITE: Embedded = embed!("sqlite": "0001_init.sql");

pub(crate) fn migrator(files: Embedded) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(file, sql)| {
            let (version, description) = parse_file_name(file);
            Migration::new(
                version,
                Cow::Owned(description.replace('_', " ")),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn parse_file_name(file: &'static str) -> (i64, &'static str) {
    let stem = file
        .strip_suffix(".sql")
        .unwrap_or_else(|| panic!("migration {file} does not end in .sql"));
    let (version, description) = stem
        .split_once('_')
        .unwrap_or_else(|| panic!("migration {file} is not named <version>_<description>.sql"));
    let version = version
        .parse()
        .unwrap_or_else(|_| panic!("migration {file} does not start with a version number"));
    (version, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_on_disk(backend: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_file_is_embedded() {
        for (backend, embedded) in [("postgres", POSTGRES), ("sqlite", SQLITE)] {
            let embedded: Vec<&str> = embedded.iter().map(|(file, _)| *file).collect();
            assert_eq!(files_on_disk(backend), embedded, "migrations/{backend}");
        }
    }

    #[test]
    fn versions_are_parsed_from_file_names() {
        let migrator = migrator(POSTGRES);
        let first = migrator.iter().next().unwrap();
        assert_eq!((first.version, first.description.as_ref()), (1, "init"));
        assert!(migrator.iter().map(|m| m.version).is_sorted());
    }
}
