//! A private three-node Garage cluster per test (replication factor 3, loopback), started,
//! stopped and partly killed by the project's own `scripts/garage.sh`. The `garage` binary:
//! `$GARAGE`, `garage` on PATH or `~/.cargo/bin/garage` (scripts/setup.sh installs it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Garage {
    pub dir: PathBuf,
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub key_id: String,
    pub secret_file: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/garage.sh")
}

/// A base port whose 33 ports above are free now.
fn free_base() -> u16 {
    for attempt in 0..50u16 {
        let base = 41_000 + ((std::process::id() as u16).wrapping_mul(7).wrapping_add(attempt * 97) % 400) * 40;
        let free = (base + 10..base + 33).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port range for Garage");
}

fn run(args: &[&str]) {
    let o = Command::new("bash").arg(script()).args(args).output().unwrap();
    assert!(o.status.success(), "garage.sh {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

impl Garage {
    pub fn start(name: &str) -> Garage {
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let dir = target.join("medcard-test-garage").join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let base = free_base().to_string();
        run(&["start", dir.to_str().unwrap(), &base]);
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        let get = |k: &str| {
            env.lines().find_map(|l| l.strip_prefix(&format!("export {k}="))).unwrap_or_else(|| panic!("{k} not in garage env")).to_owned()
        };
        Garage {
            endpoints: get("MEDCARD_TEST_S3_ENDPOINTS").split(',').map(str::to_owned).collect(),
            bucket: get("MEDCARD_TEST_S3_BUCKET"),
            key_id: get("MEDCARD_TEST_S3_KEY_ID"),
            secret_file: PathBuf::from(get("MEDCARD_TEST_S3_SECRET_FILE")),
            dir,
        }
    }

    /// `medcard device join` arguments for this bucket, every node an endpoint.
    pub fn join_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for e in &self.endpoints {
            a.extend(["--s3-endpoint".to_owned(), e.clone()]);
        }
        a.extend(["--s3-bucket".into(), self.bucket.clone(), "--s3-key-id".into(), self.key_id.clone()]);
        a.extend(["--s3-secret-file".into(), self.secret_file.to_str().unwrap().to_owned()]);
        a
    }

    pub fn kill_node(&self, n: u8) {
        run(&["kill-node", self.dir.to_str().unwrap(), &n.to_string()]);
    }

    pub fn start_node(&self, n: u8) {
        run(&["start-node", self.dir.to_str().unwrap(), &n.to_string()]);
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
