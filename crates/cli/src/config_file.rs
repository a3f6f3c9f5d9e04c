//! The configuration file layer: `--config FILE` (or `CSP_CONFIG`) holds
//! settings under the same names as the environment variables, e.g.
//!
//! ```toml
//! PREWARM_POOL_SIZE = 4
//! CSP_TOOL_ROLES = "Bash=user"
//! ```
//!
//! A value from the file replaces the built-in default of its setting, so the
//! order of precedence is: defaults, then the file, then the environment,
//! then flags. Unknown names are an error (a typo must not be ignored).

use anyhow::{Context, bail};
use clap::Command;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `--config` path from the command line, else `CSP_CONFIG`. Read before
/// clap parses, because the file changes the defaults clap applies.
pub(crate) fn path_from(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("CSP_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Reads a config file into setting name → value.
pub(crate) fn load(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    parse(&text).with_context(|| format!("in the config file {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let table: toml::Table = toml::from_str(text)?;
    table
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!(
                    "{k}: expected a string, number or boolean, found {}",
                    other.type_str()
                ),
            };
            Ok((k, v))
        })
        .collect()
}

/// Every environment variable name `cmd` and its subcommands read.
fn env_names(cmd: &Command, out: &mut BTreeSet<String>) {
    for a in cmd.get_arguments() {
        if let Some(e) = a.get_env() {
            out.insert(e.to_string_lossy().into_owned());
        }
    }
    for sc in cmd.get_subcommands() {
        env_names(sc, out);
    }
}

/// Makes each file value the default of the argument that reads the same
/// environment variable, in `cmd` and all its subcommands.
pub(crate) fn apply(cmd: Command, values: &BTreeMap<String, String>) -> anyhow::Result<Command> {
    let mut known = BTreeSet::new();
    env_names(&cmd, &mut known);
    if let Some(unknown) = values.keys().find(|k| !known.contains(*k)) {
        bail!(
            "unknown setting '{unknown}' (settings use their environment variable names, see `csp <command> --help`)"
        );
    }
    Ok(with_defaults(cmd, values))
}

fn with_defaults(mut cmd: Command, values: &BTreeMap<String, String>) -> Command {
    let args: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_string_lossy().into_owned();
            values.get(&env).map(|v| (a.get_id().clone(), v.clone()))
        })
        .collect();
    for (id, value) in args {
        cmd = cmd.mut_arg(id, |a| a.default_value(value));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, |sc| with_defaults(sc, values));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::{CommandFactory, FromArgMatches};

    fn parse_cli(file: &str, args: &[&str]) -> anyhow::Result<Cli> {
        let cmd = apply(Cli::command(), &parse(file)?)?;
        let matches = cmd.try_get_matches_from(args)?;
        Ok(Cli::from_arg_matches(&matches)?)
    }

    fn pool_size(cli: &Cli) -> usize {
        match &cli.command {
            crate::Command::Serve {
                service: crate::services::Service::SessionPool(o),
            } => o.pool.prewarm_pool_size,
            _ => panic!("not session-pool"),
        }
    }

    #[test]
    fn file_values_replace_defaults_and_flags_still_win() {
        let file = "PREWARM_POOL_SIZE = 5\nCSP_TOOL_ROLES = \"Bash\"\n";
        let cli = parse_cli(file, &["csp", "serve", "session-pool"]).unwrap();
        assert_eq!(pool_size(&cli), 5);
        let cli = parse_cli(
            file,
            &["csp", "serve", "session-pool", "--prewarm-pool-size", "7"],
        )
        .unwrap();
        assert_eq!(pool_size(&cli), 7);
        let cli = parse_cli("", &["csp", "serve", "session-pool"]).unwrap();
        assert_eq!(pool_size(&cli), 2, "the built-in default without a file");
    }

    #[test]
    fn typos_and_bad_values_are_errors_that_name_the_setting() {
        let err = parse_cli("PREWARM_POOL_SIZ = 5", &["csp", "dev"])
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("unknown setting 'PREWARM_POOL_SIZ'"),
            "{err}"
        );
        let err = parse_cli("PREWARM_POOL_SIZE = [1]", &["csp", "dev"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("PREWARM_POOL_SIZE"), "{err}");
        let err = parse_cli(
            "PREWARM_POOL_SIZE = \"many\"",
            &["csp", "serve", "session-pool"],
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("prewarm-pool-size"), "{err}");
        assert!(parse("not toml =").is_err());
    }

    #[test]
    fn config_path_comes_from_the_flag() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            path_from(&args(&["csp", "dev", "--config", "a.toml"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            path_from(&args(&["csp", "--config=b.toml", "dev"])),
            Some(PathBuf::from("b.toml"))
        );
    }
}
