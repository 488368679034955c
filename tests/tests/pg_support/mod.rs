//! A private PostgreSQL server per test, started and stopped by the project's own
//! `scripts/postgres.sh` (Debian's `postgresql` package, installed by `scripts/setup.sh`): a test
//! may stop its server to see how devices behave without it, and no other test notices.
//! Servers live under `<target>/medcard-test-pg/<name>-<pid>` (readable by the `postgres` user
//! the script runs the server as, when the tests run as root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server; stopped and removed on drop.
pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    /// The superuser's password file (0600).
    pub admin_password_file: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl PgServer {
    /// Starts a fresh server named `name`.
    pub fn start(name: &str) -> PgServer {
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let base = target.join("medcard-test-pg");
        std::fs::create_dir_all(&base).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port();
        let s = PgServer { admin_password_file: dir.join("admin.password"), dir, port };
        s.run("start");
        s
    }

    fn run(&self, what: &str) {
        let o = Command::new("bash").arg(script()).arg(what).arg(&self.dir).arg(self.port.to_string()).output().unwrap();
        assert!(o.status.success(), "postgres.sh {what}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }

    /// Stops the server (fast shutdown: open connections are closed).
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts it again after [`PgServer::stop`].
    pub fn restart(&self) {
        self.run("start");
    }

    /// `postgresql://USER@127.0.0.1:PORT/DB`.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgresql://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL as the superuser in `db` (psql, stop on the first error); returns stdout.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let password = std::fs::read_to_string(&self.admin_password_file).unwrap();
        let o = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password.trim())
            .output()
            .unwrap();
        assert!(o.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Creates a login role `name` in group `group` with a random password; returns a 0600
    /// file holding the password (in `dir`).
    pub fn login_role(&self, name: &str, group: &str, dir: &Path) -> PathBuf {
        let mut pw = [0u8; 12];
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut pw)).unwrap();
        let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        self.sql("postgres", &format!("CREATE ROLE {name} LOGIN PASSWORD '{pw}' IN ROLE {group}"));
        let f = dir.join(format!("{name}.pw"));
        std::fs::write(&f, format!("{pw}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        f
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
