//! Running the composition table: the one way every service is started,
//! whatever the mode. `csp dev` builds every row in the order of their
//! `needs` ([`start_order`]) and runs them together ([`run_all`]);
//! `csp serve` builds one and runs it with the shared `/metrics` and
//! probes listener of gRPC services ([`serve`]).

use crate::error::Error;
use crate::row::{Addrs, Built, Dev, Row, Stops};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The rows in an order where each comes after every row it needs (and
/// otherwise in table order). A need that no row provides, or a circle of
/// needs, is an [`Error::MissingDependency`].
pub(crate) fn start_order(table: &[&'static Row]) -> Result<Vec<&'static Row>, Error> {
    let mut order: Vec<&'static Row> = Vec::with_capacity(table.len());
    let mut waiting: Vec<&'static Row> = table.to_vec();
    while !waiting.is_empty() {
        let ready = waiting
            .iter()
            .position(|r| r.needs.iter().all(|n| order.iter().any(|s| s.name == *n)));
        match ready {
            Some(i) => order.push(waiting.remove(i)),
            None => {
                let row = waiting[0];
                let needs = row
                    .needs
                    .iter()
                    .find(|n| !order.iter().any(|s| s.name == **n))
                    .expect("a row that cannot start has a need not started");
                return Err(Error::MissingDependency {
                    service: row.name,
                    needs,
                });
            }
        }
    }
    Ok(order)
}

/// Builds every row for `csp dev`, each after the ones it needs, handing
/// it their addresses. Nothing runs yet; on an error, what was built is
/// dropped.
pub(crate) async fn start_all(
    table: &[&'static Row],
    dev: &Dev,
) -> Result<Vec<(&'static Row, Built)>, Error> {
    let mut addrs: BTreeMap<&'static str, SocketAddr> = BTreeMap::new();
    let mut built = Vec::with_capacity(table.len());
    for row in start_order(table)? {
        let service = (row.dev)(dev, Addrs::new(row, &addrs)).await?;
        if let Some(addr) = service.addr {
            addrs.insert(row.name, addr);
        }
        built.push((row, service));
    }
    Ok(built)
}

/// Runs every built service of `csp dev` until `shutdown`; one that fails
/// (with an error or a panic) takes the others down with it. The services
/// the session-pool calls stop once it has drained ([`Stops`]). Returns
/// the first failure.
pub(crate) async fn run_all(
    built: Vec<(&'static Row, Built)>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let stops = Stops {
        shutdown: shutdown.clone(),
        drained: built.iter().find_map(|(_, b)| b.drained.clone()),
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for (row, service) in built {
        let handle = tasks.spawn(service.run(stops.clone()));
        names.insert(handle.id(), row.name);
    }
    let mut first_error = None;
    while let Some(done) = tasks.join_next_with_id().await {
        // One service failing takes the others down with it.
        shutdown.cancel();
        let failed = match done {
            Ok((_, Ok(()))) => continue,
            Ok((_, Err(e))) => e,
            Err(source) => Error::Task {
                service: names.get(&source.id()).copied().unwrap_or("service"),
                source,
            },
        };
        first_error.get_or_insert(failed);
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs one service built by `csp serve` until `shutdown`. A gRPC service
/// gets the shared `/metrics` and probes listener, which stays up while
/// the service drains.
pub(crate) async fn serve(
    row: &Row,
    built: Built,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if let (Some(addr), Some(probes)) = (built.metrics_addr, built.probes.clone()) {
        let until = built.drained.clone().unwrap_or_else(|| shutdown.clone());
        serve_metrics(row.name, addr, until, probes).await?;
    }
    println!("csp {}: {}", row.name, row.api.shown(built.addr));
    built
        .run(Stops {
            shutdown,
            drained: None,
        })
        .await
}

/// Starts the `/metrics` and probes listener of a gRPC service in the
/// background, until `until`.
async fn serve_metrics(
    service: &str,
    addr: SocketAddr,
    until: CancellationToken,
    probes: Arc<dyn csp_telemetry::Probes>,
) -> Result<(), Error> {
    let bind = |source| Error::Bind {
        what: "/metrics (CSP_METRICS_ADDR)",
        addr,
        source,
    };
    let server = csp_telemetry::MetricsServer::bind(addr)
        .await
        .map_err(bind)?;
    println!(
        "csp {service}: metrics on http://{}/metrics",
        server.local_addr().map_err(bind)?
    );
    tokio::spawn(async move {
        if let Err(e) = server.run(until, probes).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Api, BoxFuture};

    fn never<'a>(_: &'a Dev, _: Addrs<'a>) -> BoxFuture<'a, Result<Built, Error>> {
        unreachable!("not built in these tests")
    }

    static A: Row = Row {
        name: "a",
        span: "csp-a",
        api: Api::Grpc,
        needs: &["b"],
        dev: never,
    };
    static B: Row = Row {
        name: "b",
        span: "csp-b",
        api: Api::Grpc,
        needs: &[],
        dev: never,
    };
    static C: Row = Row {
        name: "c",
        span: "csp-c",
        api: Api::Grpc,
        needs: &["nobody"],
        dev: never,
    };

    fn names(rows: &[&Row]) -> Vec<&'static str> {
        rows.iter().map(|r| r.name).collect()
    }

    #[test]
    fn csp_dev_starts_each_service_after_what_it_needs() {
        let order = start_order(crate::services::TABLE).unwrap();
        assert_eq!(
            names(&order),
            [
                "plugins",
                "policy",
                "tickets",
                "session-pool",
                "gateway",
                "tickets-worker"
            ]
        );
        assert_eq!(names(&start_order(&[&A, &B]).unwrap()), ["b", "a"]);
    }

    #[test]
    fn a_need_no_row_provides_is_a_missing_dependency() {
        let Err(err) = start_order(&[&B, &C]) else {
            panic!("started a service without what it needs")
        };
        assert!(
            matches!(
                err,
                Error::MissingDependency {
                    service: "c",
                    needs: "nobody"
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "c needs nobody, which is not started before it"
        );
        assert!(matches!(
            start_order(&[&A]),
            Err(Error::MissingDependency {
                service: "a",
                needs: "b"
            })
        ));
    }

    #[test]
    fn a_row_gets_only_the_addresses_it_declared() {
        let started = BTreeMap::from([("b", SocketAddr::from(([127, 0, 0, 1], 5)))]);
        let addrs = Addrs::new(&A, &started);
        assert_eq!(addrs.of("b").unwrap(), "http://127.0.0.1:5");
        assert!(matches!(
            Addrs::new(&B, &started).of("b"),
            Err(Error::MissingDependency {
                service: "b",
                needs: "b"
            })
        ));
    }

    #[test]
    fn every_row_is_named_like_its_serve_subcommand() {
        use clap::CommandFactory;
        let cli = crate::Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        let subcommands: Vec<&str> = serve.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(subcommands, names(crate::services::TABLE));
        for row in crate::services::TABLE {
            assert_eq!(row.span, format!("csp-{}", row.name));
        }
    }
}
