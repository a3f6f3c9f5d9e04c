//! A throwaway NATS JetStream server for the tests that restart NATS (the
//! machine's own must not be restarted under other tests).

pub(crate) fn free_port() -> u16 {
    csp_e2e::backends::free_port().expect("a free loopback port")
}

/// A throwaway JetStream server of this test (the machine's own must not
/// be restarted under other tests).
pub(crate) fn nats_server(port: u16, dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/setup.sh services)")
}

pub(crate) async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}
