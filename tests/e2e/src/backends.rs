//! Throwaway Postgres, Redis and NATS JetStream servers of one run, on free
//! ports and in a temporary directory, that a bench may SIGKILL and start
//! again on the same port and data (the machine's own servers serve other
//! tests and must never be signalled).
//!
//! Owns: starting, killing and restarting those three processes. It
//! configures nothing of csp's; [`Backends::urls`] is what an instance is
//! pointed at ([`crate::Options::backends`]).

use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released for the server to take).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Redis,
    Nats,
}

/// How Redis persists: the product's documented default deployment runs it
/// as a cache (`--save '' --appendonly no`: a restart starts empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisPersistence {
    None,
    /// `--appendonly yes --appendfsync everysec`.
    AppendOnly,
}

/// One server process and how to start it again.
struct Server {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// The three servers of one run; dropping them kills them.
pub struct Backends {
    dir: tempfile::TempDir,
    postgres: Server,
    redis: Server,
    nats: Server,
    redis_persistence: RedisPersistence,
    pg_bin: PathBuf,
    /// Postgres refuses to run as root: the `postgres` account's ids.
    pg_user: Option<(u32, u32)>,
}

impl Backends {
    /// Starts all three and waits until each accepts connections.
    pub async fn start(redis: RedisPersistence) -> Result<Backends> {
        let dir = tempfile::tempdir()?;
        // The `postgres` account must reach its data directory inside.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let pg_bin = postgres_bin()?;
        let pg_user = match nix::unistd::Uid::effective().is_root() {
            true => {
                let u = nix::unistd::User::from_name("postgres")?
                    .context("running as root needs a `postgres` account to run Postgres as")?;
                Some((u.uid.as_raw(), u.gid.as_raw()))
            }
            false => None,
        };
        let server = |name: &str| -> Result<Server> {
            Ok(Server {
                port: free_port()?,
                child: None,
                log: dir.path().join(format!("{name}.log")),
            })
        };
        let mut b = Backends {
            postgres: server("postgres")?,
            redis: server("redis")?,
            nats: server("nats")?,
            dir,
            redis_persistence: redis,
            pg_bin,
            pg_user,
        };
        b.initdb()?;
        for which in [Backend::Postgres, Backend::Redis, Backend::Nats] {
            b.launch(which).await?;
        }
        Ok(b)
    }

    /// What a distributed instance uses: these three servers.
    pub fn urls(&self) -> crate::BackendUrls {
        crate::BackendUrls {
            database: format!(
                "postgres://postgres@127.0.0.1:{}/postgres",
                self.postgres.port
            ),
            redis: format!("redis://127.0.0.1:{}", self.redis.port),
            nats: format!("nats://127.0.0.1:{}", self.nats.port),
        }
    }

    /// `127.0.0.1:PORT` of one server (e.g. for a proxy in front of it).
    pub fn addr(&self, which: Backend) -> String {
        format!("127.0.0.1:{}", self.server(which).port)
    }

    /// Kills one server with SIGKILL and reaps it (Postgres: the
    /// postmaster; its backends notice and exit on their own).
    pub fn kill9(&mut self, which: Backend) {
        if let Some(mut c) = self.server_mut(which).child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts one server again on its port and data directory.
    pub async fn restart(&mut self, which: Backend) -> Result<()> {
        self.kill9(which);
        self.launch(which).await
    }

    /// From now on Redis starts with `persistence` (takes effect at the
    /// next [`Backends::restart`]).
    pub fn set_redis_persistence(&mut self, persistence: RedisPersistence) {
        self.redis_persistence = persistence;
    }

    fn server(&self, which: Backend) -> &Server {
        match which {
            Backend::Postgres => &self.postgres,
            Backend::Redis => &self.redis,
            Backend::Nats => &self.nats,
        }
    }

    fn server_mut(&mut self, which: Backend) -> &mut Server {
        match which {
            Backend::Postgres => &mut self.postgres,
            Backend::Redis => &mut self.redis,
            Backend::Nats => &mut self.nats,
        }
    }

    fn pg_data(&self) -> PathBuf {
        self.dir.path().join("pgdata")
    }

    fn as_pg_user(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.pg_user {
            cmd.uid(uid).gid(gid);
        }
    }

    fn initdb(&self) -> Result<()> {
        let data = self.pg_data();
        std::fs::create_dir_all(&data)?;
        if let Some((uid, gid)) = self.pg_user {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        }
        let mut cmd = Command::new(self.pg_bin.join("initdb"));
        cmd.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null());
        self.as_pg_user(&mut cmd);
        let out = cmd.output().context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    async fn launch(&mut self, which: Backend) -> Result<()> {
        let port = self.server(which).port.to_string();
        let mut cmd = match which {
            Backend::Postgres => {
                let mut cmd = Command::new(self.pg_bin.join("postgres"));
                cmd.arg("-D")
                    .arg(self.pg_data())
                    .args(["-p", &port, "-h", "127.0.0.1", "-k"])
                    .arg(self.pg_data())
                    // Every csp process holds a pool; the default 100 is
                    // tight for seven of them plus the bench.
                    .args(["-c", "max_connections=300"]);
                self.as_pg_user(&mut cmd);
                cmd
            }
            Backend::Redis => {
                let mut cmd = Command::new("redis-server");
                cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
                    .arg("--dir")
                    .arg(self.dir.path());
                match self.redis_persistence {
                    RedisPersistence::None => cmd.args(["--appendonly", "no"]),
                    RedisPersistence::AppendOnly => {
                        cmd.args(["--appendonly", "yes", "--appendfsync", "everysec"])
                    }
                };
                cmd
            }
            Backend::Nats => {
                let mut cmd = Command::new("nats-server");
                cmd.args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd"])
                    .arg(self.dir.path().join("nats"));
                cmd
            }
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.server(which).log)?;
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A Postgres killed a moment ago may still have backends attached
        // to its shared memory, and refuses to start until they are gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = cmd.spawn().with_context(|| format!("starting {which:?}"))?;
            match wait_listening(&mut child, self.server(which).port, deadline).await {
                Ok(()) => {
                    self.server_mut(which).child = Some(child);
                    if which == Backend::Postgres {
                        self.until_postgres_answers(deadline).await?;
                    }
                    return Ok(());
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("backends: {which:?} not up yet ({e:#}), trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{which:?} did not start: {e:#}; log {}", self.log_of(which));
                }
            }
        }
    }

    /// Postgres listens before it has replayed its WAL ("the database
    /// system is starting up"): until a query succeeds.
    async fn until_postgres_answers(&self, deadline: Instant) -> Result<()> {
        let url = self.urls().database;
        loop {
            let tried = async {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
                sqlx::query("SELECT 1").execute(&mut c).await?;
                Ok::<_, anyhow::Error>(())
            };
            match tried.await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => bail!("Postgres never answered: {e:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn log_of(&self, which: Backend) -> String {
        self.server(which).log.display().to_string()
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for which in [Backend::Nats, Backend::Redis, Backend::Postgres] {
            self.kill9(which);
        }
    }
}

/// Until the port accepts a connection, or the process exits.
async fn wait_listening(child: &mut Child, port: u16, deadline: Instant) -> Result<()> {
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("exited with {status}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not listening on {port}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no Postgres server under /usr/lib/postgresql/*/bin")
}
