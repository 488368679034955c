//! The simulated card on the real smart-card stack: `card-sim serve` → vpcd → pcscd → OpenSC,
//! yubico-piv-tool, OpenSSL and the `pcsc` crate (issue 2, "Integration tests through real
//! pcscd + vpcd"), plus the `card-sim` command line (signals, refusing to overwrite, refusing a
//! corrupt card file, reconnecting to vpcd).
//!
//! There is one pcscd per machine (pcscd 1.9.9 ignores `PCSCLITE_CSOCK_NAME`) and one card per
//! vpcd reader, so every test that inserts a card holds [`pcscd_lock`]: a process-wide mutex
//! (tests in this binary run in parallel) plus an exclusive lock on a file in the temp dir (the
//! criterion bench and other processes take it too). Each such test serves its own fresh card
//! file in reader `Virtual PCD 00 00` and stops its `card-sim` on drop.
//!
//! A tool that is missing makes the test FAIL with a message to run `scripts/setup.sh`; nothing
//! here is skipped silently.
//!
//! Known upstream bug worked around here: Debian's yubico-piv-tool 2.2.0 built against OpenSSL 3
//! cannot `selfsign-certificate` (nor `request-certificate`): it prints "Failed signing
//! certificate." without ever sending the sign APDU to the card (Yubico/yubico-piv-tool#388, fixed
//! in 2.3). [`yubico_piv_tool_generates_and_imports_a_certificate_that_opensc_signs_with`] still
//! asks yubico-piv-tool first and, when it fails that way (checked in the card's APDU log: no
//! GENERAL AUTHENTICATE reached the card), makes the self-signed certificate with the card's own
//! key through OpenSC's PKCS#11 module and OpenSSL's pkcs11 engine (libengine-pkcs11-openssl),
//! then imports it with `yubico-piv-tool -a import-certificate` as the acceptance asks.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use card_applet_sim::persist;

const SIM: &str = env!("CARGO_BIN_EXE_card-sim");
/// The vpcd reader the tests use, and its port.
const READER: &str = "Virtual PCD 00 00";
const VPCD: &str = "127.0.0.1:35963";
/// Blank-card secrets (docs/card.md).
const PIN: &str = "123456";
const PUK: &str = "12345678";
/// SP 800-73-4 Part 2 §3.1.1 (full AID, as yubico-piv-tool sends it).
const SELECT_PIV: [u8; 15] = [0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00];
/// How long a card may take to appear in / vanish from the reader (pcscd polls vpcd).
const CARD_EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one external tool may run before the test gives up on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `card-sim serve` may take to exit after SIGINT/SIGTERM before the test fails.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

const SETUP_HINT: &str = "run `bash scripts/setup.sh` (installs pcscd, vsmartcard-vpcd, opensc, yubico-piv-tool, \
                          libengine-pkcs11-openssl and starts pcscd with the vpcd readers)";

// ---------------------------------------------------------------------------------------------
// Serialization: one pcscd per machine.

static PCSCD: Mutex<()> = Mutex::new(());

/// Exclusive use of pcscd's vpcd reader 00 00, for this test and against other processes.
struct PcscdLock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

fn pcscd_lock() -> PcscdLock {
    // A failed test poisons the mutex; the reader is still usable by the next one.
    let guard = PCSCD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = std::env::temp_dir().join("medcard-pcscd-vpcd0.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the pcscd lock file {}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    PcscdLock { _file: file, _guard: guard }
}

// ---------------------------------------------------------------------------------------------
// Tools.

/// The full path of `tool` on PATH, or a failure saying to run the setup script.
fn require_tool(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not installed (not on PATH): {SETUP_HINT}"))
}

/// OpenSC's PKCS#11 module.
fn opensc_pkcs11() -> PathBuf {
    if let Some(p) = std::env::var_os("MEDCARD_OPENSC_PKCS11") {
        return PathBuf::from(p);
    }
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib64/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("OpenSC's PKCS#11 module opensc-pkcs11.so is not installed: {SETUP_HINT}"))
}

/// OpenSSL's pkcs11 engine (libengine-pkcs11-openssl), in OpenSSL's ENGINESDIR.
fn pkcs11_engine() -> PathBuf {
    let out = tool("openssl", &["version", "-e"]);
    let text = String::from_utf8_lossy(&out.stdout);
    // ENGINESDIR: "/usr/lib/x86_64-linux-gnu/engines-3"
    let dir = text.split('"').nth(1).unwrap_or_else(|| panic!("cannot read ENGINESDIR from `openssl version -e`: {text}"));
    let engine = Path::new(dir).join("pkcs11.so");
    assert!(
        engine.is_file(),
        "OpenSSL's pkcs11 engine {} is missing (Debian package libengine-pkcs11-openssl): {SETUP_HINT}",
        engine.display()
    );
    engine
}

/// Run `program args`, with a timeout, returning its output whatever its exit status.
fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let exe = require_tool(program);
    let mut child = Command::new(&exe)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    // Drain the pipes on threads so a chatty tool never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let status = wait_with_deadline(&mut child, TOOL_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`{program} {}` did not finish within {TOOL_TIMEOUT:?}", args.join(" "))
    });
    Output { status, stdout: out_thread.join().unwrap_or_default(), stderr: err_thread.join().unwrap_or_default() }
}

fn show(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run a tool that must succeed; returns its output.
fn tool(program: &str, args: &[&str]) -> Output {
    tool_env(program, args, &[])
}

fn tool_env(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let out = run(program, args, envs);
    assert!(out.status.success(), "`{program} {}` failed: {}", args.join(" "), show(&out));
    out
}

/// stdout and stderr of a run, as one string (the tools print results on either).
fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => return None,
            Err(e) => panic!("cannot wait for child {}: {e}", child.id()),
        }
    }
}

/// Send `signal` ("TERM", "INT", …) to `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap_or_else(|e| panic!("cannot run kill: {e}"));
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

// ---------------------------------------------------------------------------------------------
// PC/SC.

fn pcsc_context() -> pcsc::Context {
    pcsc::Context::establish(pcsc::Scope::User).unwrap_or_else(|e| panic!("cannot reach pcscd ({e}): is pcscd running? {SETUP_HINT}"))
}

fn reader_name() -> CString {
    CString::new(READER).expect("no NUL in the reader name")
}

/// Is a card in [`READER`]? Fails if pcscd has no such reader.
fn card_present(ctx: &pcsc::Context) -> bool {
    let readers = ctx.list_readers_owned().unwrap_or_default();
    assert!(
        readers.iter().any(|r| r.as_c_str() == reader_name().as_c_str()),
        "pcscd has no reader '{READER}' (readers: {readers:?}): vsmartcard-vpcd missing or pcscd started before it; \
         {SETUP_HINT}"
    );
    let mut states = [pcsc::ReaderState::new(reader_name(), pcsc::State::UNAWARE)];
    match ctx.get_status_change(Duration::from_millis(0), &mut states) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(e) => panic!("SCardGetStatusChange on '{READER}' failed: {e}"),
    }
    states[0].event_state().contains(pcsc::State::PRESENT)
}

/// Wait until the reader shows a card (`want` true) or none (`want` false).
fn wait_for_card(ctx: &pcsc::Context, want: bool, why: &str) {
    let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
    while card_present(ctx) != want {
        assert!(
            Instant::now() < deadline,
            "{why}: reader '{READER}' still shows {} after {CARD_EVENT_TIMEOUT:?}",
            if want { "no card" } else { "a card" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connect to the card in [`READER`] (retrying while pcscd settles after an insertion).
fn connect(ctx: &pcsc::Context) -> pcsc::Card {
    let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
    loop {
        match ctx.connect(&reader_name(), pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
            Ok(card) => return card,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect to '{READER}': {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to the card in '{READER}': {e}"),
        }
    }
}

/// Send an APDU; returns (data, SW), fetching `61xx` continuations with GET RESPONSE.
fn transmit(card: &pcsc::Card, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let mut data = Vec::new();
    let mut command = apdu.to_vec();
    loop {
        let resp = card.transmit(&command, &mut buf).unwrap_or_else(|e| panic!("transmit {command:02X?} failed: {e}"));
        let Some((body, sw)) = resp.split_last_chunk::<2>() else {
            panic!("response without a status word: {resp:02X?}");
        };
        data.extend_from_slice(body);
        let sw = u16::from_be_bytes(*sw);
        if sw >> 8 != 0x61 {
            return (data, sw);
        }
        command = vec![0x00, 0xC0, 0x00, 0x00, (sw & 0xFF) as u8];
    }
}

/// VERIFY the PIV PIN (key reference 80), FF-padded to 8 bytes; an empty `pin` asks for the
/// tries left.
fn verify_apdu(pin: &str) -> Vec<u8> {
    if pin.is_empty() {
        return vec![0x00, 0x20, 0x00, 0x80];
    }
    let mut apdu = vec![0x00, 0x20, 0x00, 0x80, 0x08];
    apdu.extend(pin.bytes().chain(std::iter::repeat(0xFF)).take(8));
    apdu
}

// ---------------------------------------------------------------------------------------------
// A served card.

/// A fresh card file served by `card-sim serve` in [`READER`]; stopped (SIGTERM) on drop.
struct Sim {
    dir: tempfile::TempDir,
    child: Option<Child>,
    ctx: pcsc::Context,
    _lock: PcscdLock,
}

impl Sim {
    /// Make a fresh card (serial `serial`) and insert it.
    fn start(serial: u32) -> Sim {
        let lock = pcscd_lock();
        let ctx = pcsc_context();
        // The previous test's card must be gone, and no stray card-sim may be serving the port.
        wait_for_card(
            &ctx,
            false,
            "another card is in the reader before this test started (is another `card-sim serve` \
             connected to 127.0.0.1:35963? stop it)",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sim = Sim { dir, child: None, ctx, _lock: lock };
        let out = sim_cmd(&["new", "--out", &sim.card_str(), "--serial", &serial.to_string()]);
        assert!(out.status.success(), "card-sim new failed: {}", show(&out));
        sim.serve();
        sim
    }

    fn card(&self) -> PathBuf {
        self.dir.path().join("patient.card")
    }

    fn card_str(&self) -> String {
        self.card().to_string_lossy().into_owned()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("card-sim.log")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Start `card-sim serve` on the card file (logging APDUs at trace level, appended to
    /// [`Sim::log`]) and wait for the card to appear.
    fn serve(&mut self) {
        assert!(self.child.is_none(), "already serving");
        let log = File::options().create(true).append(true).open(self.log()).expect("open the card-sim log");
        let child = Command::new(SIM)
            .args(["serve", "--card", &self.card_str(), "--vpcd", VPCD])
            .env("RUST_LOG", "debug,card_applet_sim=trace")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start card-sim serve");
        self.child = Some(child);
        let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
        while !card_present(&self.ctx) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("card-sim serve exited early ({status}); its log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the simulated card did not appear in '{READER}' within {CARD_EVENT_TIMEOUT:?}; card-sim log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send `signal` to `card-sim serve`, require a prompt exit 0, and wait for the card to
    /// leave the reader.
    fn stop_with(&mut self, signal: &str) {
        let mut child = self.child.take().expect("serving");
        send_signal(child.id(), signal);
        let status = wait_with_deadline(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("card-sim serve did not exit within {EXIT_TIMEOUT:?} of SIG{signal}")
        });
        assert!(status.success(), "card-sim serve exited with {status} on SIG{signal}; log:\n{}", self.log_text());
        wait_for_card(&self.ctx, false, "card-sim stopped");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn log_len(&self) -> usize {
        self.log_text().len()
    }

    fn yubico(&self, args: &[&str]) -> Output {
        let mut all = vec!["-r", READER];
        all.extend_from_slice(args);
        run("yubico-piv-tool", &all, &[])
    }

    fn yubico_ok(&self, args: &[&str]) -> String {
        let out = self.yubico(args);
        assert!(out.status.success(), "yubico-piv-tool {} failed: {}", args.join(" "), show(&out));
        text(&out)
    }

    fn pkcs11(&self, args: &[&str]) -> Output {
        let module = opensc_pkcs11();
        let module = module.to_string_lossy();
        let mut all = vec!["--module", module.as_ref()];
        all.extend_from_slice(args);
        run("pkcs11-tool", &all, &[])
    }

    fn pin_tries_left(&self) -> u8 {
        let status = self.yubico_ok(&["-a", "status"]);
        let line = status
            .lines()
            .find(|l| l.starts_with("PIN tries left:"))
            .unwrap_or_else(|| panic!("no 'PIN tries left' in yubico-piv-tool status:\n{status}"));
        line.trim_start_matches("PIN tries left:").trim().parse().unwrap_or_else(|e| panic!("bad tries in {line:?}: {e}"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status();
            if wait_with_deadline(&mut child, EXIT_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Run `card-sim` with `args` (not serving).
fn sim_cmd(args: &[&str]) -> Output {
    let mut child =
        Command::new(SIM).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start card-sim");
    let status = wait_with_deadline(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`card-sim {}` did not exit within {EXIT_TIMEOUT:?}", args.join(" "))
    });
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    Output { status, stdout, stderr }
}

// ---------------------------------------------------------------------------------------------
// OpenSC and yubico-piv-tool through pcscd + vpcd.

#[test]
fn opensc_names_the_simulated_card_a_piv_card() {
    require_tool("opensc-tool");
    let _sim = Sim::start(10_000_001);
    let out = tool("opensc-tool", &["-r", READER, "-n"]);
    let name = text(&out);
    assert!(name.contains("Personal Identity Verification Card"), "opensc-tool -n said: {name}");
}

#[test]
fn yubico_piv_tool_generates_and_imports_a_certificate_that_opensc_signs_with() {
    for t in ["yubico-piv-tool", "pkcs15-tool", "pkcs11-tool", "openssl"] {
        require_tool(t);
    }
    let engine = pkcs11_engine();
    let module = opensc_pkcs11();
    let sim = Sim::start(10_000_002);

    // -a status on a blank card.
    let status = sim.yubico_ok(&["-a", "status"]);
    assert!(status.contains("Version:") && status.contains("PIN tries left:\t3"), "status:\n{status}");

    // GENERATE in 9A with the default management key (yubico-piv-tool's default -k).
    let pub_pem = sim.path("pub.pem");
    sim.yubico_ok(&["-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", &pub_pem]);
    let pub_text = tool("openssl", &["pkey", "-pubin", "-in", &pub_pem, "-noout", "-text"]);
    assert!(text(&pub_text).contains("prime256v1"), "generated key: {}", text(&pub_text));

    // verify-pin + selfsign-certificate, as the acceptance list asks.
    let cert_pem = sim.path("cert.pem");
    let log_before = sim.log_len();
    let selfsign = sim.yubico(&[
        "-v",
        "2",
        "-a",
        "verify-pin",
        "-P",
        PIN,
        "-a",
        "selfsign-certificate",
        "-s",
        "9a",
        "-S",
        "/CN=test/",
        "-i",
        &pub_pem,
        "-o",
        &cert_pem,
    ]);
    let apdus_during_selfsign: Vec<String> =
        sim.log_text()[log_before..].lines().filter(|l| l.contains("APDU ")).map(str::to_owned).collect();
    if selfsign.status.success() {
        eprintln!("yubico-piv-tool selfsign-certificate worked (a build without Yubico/yubico-piv-tool#388)");
    } else {
        // Yubico/yubico-piv-tool#388: 2.2.0 with OpenSSL 3 fails inside OpenSSL's X509_sign
        // before any sign APDU; anything else is a real failure of the card.
        let said = text(&selfsign);
        assert!(said.contains("Failed signing certificate."), "selfsign-certificate failed in an unexpected way: {}", show(&selfsign));
        assert!(
            apdus_during_selfsign.iter().any(|l| l.contains("APDU 00 20 00 80") && l.contains("SW 9000")),
            "verify-pin did not reach the card: {apdus_during_selfsign:#?}"
        );
        assert!(
            !apdus_during_selfsign.iter().any(|l| l.contains("APDU 00 87 11 9A")),
            "yubico-piv-tool did send a sign APDU, so this is not Yubico/yubico-piv-tool#388 and the card \
             answered it wrongly: {apdus_during_selfsign:#?}"
        );
        eprintln!(
            "yubico-piv-tool selfsign-certificate hit Yubico/yubico-piv-tool#388 (no sign APDU sent); \
             making the self-signed certificate through OpenSC PKCS#11 + OpenSSL's pkcs11 engine"
        );
        selfsign_via_pkcs11(&sim, &pub_pem, &cert_pem, &engine, &module);
    }
    let cert_text = text(&tool("openssl", &["x509", "-in", &cert_pem, "-noout", "-subject", "-issuer"]));
    assert!(cert_text.contains("subject=CN = test") && cert_text.contains("issuer=CN = test"), "{cert_text}");
    // Self-signed by the card's 9A key: the certificate verifies under its own public key, which
    // is the key GENERATE returned.
    let cert_pub = sim.path("certpub.pem");
    tool("openssl", &["x509", "-in", &cert_pem, "-noout", "-pubkey", "-out", &cert_pub]);
    assert_eq!(
        std::fs::read_to_string(&cert_pub).expect("cert pubkey"),
        std::fs::read_to_string(&pub_pem).expect("generated pubkey"),
        "the certificate must carry the card's 9A public key"
    );
    tool("openssl", &["verify", "-CAfile", &cert_pem, &cert_pem]);

    // import-certificate into 9A.
    sim.yubico_ok(&["-a", "import-certificate", "-s", "9a", "-i", &cert_pem]);

    // OpenSC sees the EC key and the certificate.
    let p15 = text(&tool("pkcs15-tool", &["--reader", READER, "-D"]));
    for want in ["Private EC Key [PIV AUTH key]", "Public EC Key [PIV AUTH pubkey]", "Certificate for PIV Authentication"] {
        assert!(p15.contains(want), "pkcs15-tool -D lacks {want:?}:\n{p15}");
    }
    let objects = sim.pkcs11(&["--list-objects"]);
    let objects = text(&objects);
    assert!(objects.contains("Public Key Object; EC"), "pkcs11-tool --list-objects:\n{objects}");
    assert!(
        objects.contains("Certificate Object; type = X.509 cert") && objects.contains("subject:    DN: CN=test"),
        "pkcs11-tool --list-objects:\n{objects}"
    );
    // The private key object is listed after login.
    let private = text(&sim.pkcs11(&["--login", "--pin", PIN, "--list-objects", "--type", "privkey"]));
    assert!(private.contains("Private Key Object; EC") && private.contains("PIV AUTH key"), "{private}");

    // pkcs11-tool --sign --mechanism ECDSA over a SHA-256 digest; OpenSSL verifies it with the
    // certificate's public key.
    let data = sim.path("data.txt");
    std::fs::write(&data, b"MedCard patient presence check").expect("write data");
    let digest = sim.path("data.sha256");
    tool("openssl", &["dgst", "-sha256", "-binary", "-out", &digest, &data]);
    let sig = sim.path("sig.der");
    let signed = sim.pkcs11(&[
        "--login",
        "--pin",
        PIN,
        "--sign",
        "--mechanism",
        "ECDSA",
        "--id",
        "01",
        "--signature-format",
        "openssl",
        "-i",
        &digest,
        "-o",
        &sig,
    ]);
    assert!(signed.status.success(), "pkcs11-tool --sign failed: {}", show(&signed));
    let verified = tool("openssl", &["pkeyutl", "-verify", "-pubin", "-inkey", &cert_pub, "-in", &digest, "-sigfile", &sig]);
    assert!(text(&verified).contains("Signature Verified Successfully"), "{}", show(&verified));
    let verified = tool("openssl", &["dgst", "-sha256", "-verify", &cert_pub, "-signature", &sig, &data]);
    assert!(text(&verified).contains("Verified OK"), "{}", show(&verified));
    // And a tampered message does not verify.
    std::fs::write(&data, b"MedCard patient presence check!").expect("write data");
    let tampered = run("openssl", &["dgst", "-sha256", "-verify", &cert_pub, "-signature", &sig, &data], &[]);
    assert!(!tampered.status.success(), "a tampered message verified: {}", show(&tampered));

    assert_log_free_of(&sim, &[PIN.as_bytes(), PUK.as_bytes()], &[]);
}

/// The workaround for Yubico/yubico-piv-tool#388: make the self-signed 9A certificate with the
/// card's key through OpenSC's PKCS#11 module.
///
/// OpenSC's PIV driver only shows a private key whose slot holds a certificate, so first a
/// placeholder certificate carrying the card's public key (signed by a throwaway key) goes into
/// 9A; then `openssl req -x509` signs the real certificate through the pkcs11 engine with the
/// card's key (one GENERAL AUTHENTICATE 9A on the card); the caller imports the result with
/// `yubico-piv-tool -a import-certificate`, replacing the placeholder.
fn selfsign_via_pkcs11(sim: &Sim, pub_pem: &str, cert_pem: &str, engine: &Path, module: &Path) {
    let throwaway = sim.path("throwaway.key");
    tool("openssl", &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &throwaway]);
    let placeholder = sim.path("placeholder.pem");
    tool(
        "openssl",
        &["x509", "-new", "-subj", "/CN=placeholder/", "-force_pubkey", pub_pem, "-key", &throwaway, "-days", "1", "-out", &placeholder],
    );
    sim.yubico_ok(&["-a", "import-certificate", "-s", "9a", "-i", &placeholder]);

    let conf = sim.path("openssl-pkcs11.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n\
             [openssl_init]\nengines = engine_section\n\
             [engine_section]\npkcs11 = pkcs11_section\n\
             [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {}\nMODULE_PATH = {}\ninit = 0\n\
             [req]\ndistinguished_name = dn\n[dn]\n",
            engine.display(),
            module.display()
        ),
    )
    .expect("write openssl config");
    let key_uri = format!("pkcs11:object=PIV%20AUTH%20key;type=private;pin-value={PIN}");
    let log_before = sim.log_len();
    tool_env(
        "openssl",
        &[
            "req",
            "-new",
            "-x509",
            "-engine",
            "pkcs11",
            "-keyform",
            "engine",
            "-key",
            &key_uri,
            "-subj",
            "/CN=test/",
            "-days",
            "365",
            "-sha256",
            "-out",
            cert_pem,
        ],
        &[("OPENSSL_CONF", &conf)],
    );
    let log = sim.log_text();
    assert!(
        log[log_before..].lines().any(|l| l.contains("APDU 00 87 11 9A") && l.contains("SW 9000")),
        "the certificate was not signed on the card (no GENERAL AUTHENTICATE 9A in its log)"
    );
}

#[test]
fn three_wrong_pins_through_pkcs11_tool_block_the_pin_and_the_puk_unblocks_it() {
    for t in ["yubico-piv-tool", "pkcs11-tool"] {
        require_tool(t);
    }
    let sim = Sim::start(10_000_003);
    assert_eq!(sim.pin_tries_left(), 3);
    for attempt in 1..=3u8 {
        let out = sim.pkcs11(&["--login", "--pin", "999999", "--list-objects"]);
        assert!(!out.status.success(), "wrong PIN accepted on attempt {attempt}: {}", show(&out));
        let said = text(&out);
        // OpenSC may report the third wrong PIN as incorrect or already as locked.
        let locked_ok = attempt == 3 && said.contains("CKR_PIN_LOCKED");
        assert!(said.contains("CKR_PIN_INCORRECT") || locked_ok, "attempt {attempt}: {said}");
        assert_eq!(sim.pin_tries_left(), 3 - attempt, "tries after wrong PIN {attempt}");
    }
    // Blocked: even the right PIN is refused, and the card says 6983 to a VERIFY.
    let out = sim.pkcs11(&["--login", "--pin", PIN, "--list-objects"]);
    assert!(text(&out).contains("CKR_PIN_LOCKED"), "right PIN on a blocked card: {}", show(&out));
    {
        let card = connect(&sim.ctx);
        assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
        assert_eq!(transmit(&card, &verify_apdu(PIN)).1, 0x6983, "VERIFY with the right PIN when blocked");
        assert_eq!(transmit(&card, &verify_apdu("")).1, 0x6983, "empty VERIFY when blocked");
    }
    let refused = sim.yubico(&["-a", "verify-pin", "-P", PIN]);
    assert!(!refused.status.success(), "blocked PIN verified: {}", show(&refused));

    // unblock-pin with the PUK sets a new PIN with full tries.
    let said = sim.yubico_ok(&["-a", "unblock-pin", "-P", PUK, "-N", "654321"]);
    assert!(said.contains("Successfully unblocked the pin code."), "{said}");
    assert_eq!(sim.pin_tries_left(), 3);
    sim.yubico_ok(&["-a", "verify-pin", "-P", "654321"]);
    let out = sim.pkcs11(&["--login", "--pin", "654321", "--list-objects"]);
    assert!(out.status.success(), "new PIN refused by pkcs11-tool: {}", show(&out));
    let old = sim.yubico(&["-a", "verify-pin", "-P", PIN]);
    assert!(!old.status.success(), "the old PIN still works: {}", show(&old));
}

// ---------------------------------------------------------------------------------------------
// The pcsc crate directly.

#[test]
fn pcsc_select_and_get_data_chuid_return_the_cards_guid() {
    let sim = Sim::start(10_000_004);
    let card = connect(&sim.ctx);
    let (fci, sw) = transmit(&card, &SELECT_PIV);
    assert_eq!(sw, 0x9000);
    // Application property template (61) with the PIX of the PIV application.
    assert_eq!(fci.first(), Some(&0x61), "SELECT answer {fci:02X?}");
    let pix = [0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
    assert!(fci.windows(pix.len()).any(|w| w == pix), "no PIV AID in {fci:02X?}");
    // Truncated AID works too; other AIDs are not found.
    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08]).1, 0x9000);
    assert_eq!(transmit(&card, &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x97]).1, 0x6A82);
    assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);

    let (chuid, sw) = transmit(&card, &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00]);
    assert_eq!(sw, 0x9000);
    assert_eq!(chuid.first(), Some(&0x53), "CHUID container {chuid:02X?}");
    let mut guid_tlv = vec![0x34, 0x10];
    guid_tlv.extend_from_slice(&card_applet_sim::objects::guid(10_000_004));
    assert!(chuid.windows(guid_tlv.len()).any(|w| w == guid_tlv), "GUID of serial 10000004 not in {chuid:02X?}");
    // Yubico serial (INS F8) is the card's serial.
    let (serial, sw) = transmit(&card, &[0x00, 0xF8, 0x00, 0x00, 0x00]);
    assert_eq!((serial, sw), (10_000_004u32.to_be_bytes().to_vec(), 0x9000));
    // An empty certificate object is absent.
    assert_eq!(transmit(&card, &[0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x00]).1, 0x6A82);
}

#[test]
fn a_wrong_pin_try_survives_a_card_sim_restart() {
    let mut sim = Sim::start(10_000_005);
    {
        let card = connect(&sim.ctx);
        assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
        assert_eq!(transmit(&card, &verify_apdu("")).1, 0x63C3);
        assert_eq!(transmit(&card, &verify_apdu("000000")).1, 0x63C2, "wrong PIN");
    }
    sim.stop_with("TERM");
    let state = persist::load(&sim.card()).expect("the card file is valid after SIGTERM");
    assert_eq!(state.pin.tries_left, 2, "tries in the card file");

    sim.serve();
    {
        let card = connect(&sim.ctx);
        assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
        assert_eq!(transmit(&card, &verify_apdu("")).1, 0x63C2, "tries left after the restart");
        // The right PIN restores the counter, and that survives a restart too.
        assert_eq!(transmit(&card, &verify_apdu(PIN)).1, 0x9000);
        // Security status is per session: verified now...
        assert_eq!(transmit(&card, &verify_apdu("")).1, 0x9000);
    }
    sim.stop_with("INT");
    sim.serve();
    let card = connect(&sim.ctx);
    assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
    // ...but not after the card was removed and inserted again.
    assert_eq!(transmit(&card, &verify_apdu("")).1, 0x63C3, "tries after a correct PIN and a restart");
}

#[test]
fn sigterm_and_sigint_stop_serve_with_exit_0_and_leave_a_valid_card_file() {
    let mut sim = Sim::start(10_000_006);
    for signal in ["TERM", "INT"] {
        {
            // Change the state so the file has been rewritten while serving.
            let card = connect(&sim.ctx);
            assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
            let (_, sw) = transmit(&card, &verify_apdu("111111"));
            assert_eq!(sw & 0xFFF0, 0x63C0, "wrong PIN answer {sw:04X}");
            assert_eq!(transmit(&card, &verify_apdu(PIN)).1, 0x9000);
        }
        // Exit 0 within EXIT_TIMEOUT, card removed from the reader (checked in stop_with).
        sim.stop_with(signal);
        let state = persist::load(&sim.card()).unwrap_or_else(|e| panic!("card file invalid after SIG{signal}: {e}"));
        assert_eq!((state.serial, state.pin.tries_left), (10_000_006, 3), "after SIG{signal}");
        let log = sim.log_text();
        assert!(log.contains("stopped: card removed"), "no clean-stop line in the log after SIG{signal}:\n{log}");
        sim.serve();
    }
}

// ---------------------------------------------------------------------------------------------
// The APDU debug log.

/// The log must not contain any of `secrets` or `key_bytes` in hex (either case, with or
/// without spaces, FF-padded to 8 as on the wire) or as Rust's decimal `Debug` of the bytes.
/// (Not as ASCII digits: "123456" legitimately occurs in timestamps and in hex dumps of public
/// data, and a PIN only ever travels as bytes.)
fn assert_log_free_of(sim: &Sim, secrets: &[&[u8]], key_bytes: &[&[u8]]) {
    let log = sim.log_text();
    assert!(log.contains("APDU 00 A4 04 00"), "the debug log has no APDU lines, so it proves nothing:\n{log}");
    let lower = log.to_lowercase();
    let mut forms: Vec<String> = Vec::new();
    for s in secrets.iter().chain(key_bytes) {
        let mut padded = s.to_vec();
        if padded.len() < 8 {
            padded.resize(8, 0xFF);
        }
        for bytes in [s.to_vec(), padded] {
            forms.push(hex::encode(&bytes));
            forms.push(bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "));
            forms.push(format!("{bytes:?}").to_lowercase());
        }
    }
    for form in forms {
        assert!(!lower.contains(&form), "the card-sim log contains a secret as {form:?}:\n{log}");
    }
}

#[test]
fn debug_log_never_contains_pins_puks_or_key_material() {
    require_tool("yubico-piv-tool");
    let sim = Sim::start(10_000_007);
    // Distinctive secrets, so a match cannot be a coincidence.
    let (pin, new_pin, puk) = ("482916", "70553148", "73920145");
    sim.yubico_ok(&["-a", "change-puk", "-P", PUK, "-N", puk]);
    sim.yubico_ok(&["-a", "change-pin", "-P", PIN, "-N", pin]);
    // Management-key authentication (9B) and key generation in two slots.
    sim.yubico_ok(&["-a", "generate", "-s", "9e", "-A", "ECCP256"]);
    sim.yubico_ok(&["-a", "generate", "-s", "9c", "-A", "ECCP256"]);
    {
        let card = connect(&sim.ctx);
        assert_eq!(transmit(&card, &SELECT_PIV).1, 0x9000);
        assert_eq!(transmit(&card, &verify_apdu("918273")).1, 0x63C2);
        assert_eq!(transmit(&card, &verify_apdu(pin)).1, 0x9000);
        // Sign with 9C (PIN just verified) and 9E: the digests are public, the keys are not.
        let digest = [0x5Au8; 32];
        for slot in [0x9C, 0x9E] {
            if slot == 0x9C {
                assert_eq!(transmit(&card, &verify_apdu(pin)).1, 0x9000);
            }
            let mut apdu = vec![0x00, 0x87, 0x11, slot, 0x26, 0x7C, 0x24, 0x82, 0x00, 0x81, 0x20];
            apdu.extend_from_slice(&digest);
            apdu.push(0x00);
            let (sig, sw) = transmit(&card, &apdu);
            assert_eq!(sw, 0x9000, "sign with {slot:02X}");
            assert_eq!(sig.first(), Some(&0x7C));
        }
        // RESET RETRY COUNTER with the PUK, then CHANGE REFERENCE DATA, both via raw APDUs.
        let mut rrc = vec![0x00, 0x2C, 0x00, 0x80, 0x10];
        rrc.extend(puk.bytes());
        rrc.extend(new_pin.bytes());
        assert_eq!(transmit(&card, &rrc).1, 0x9000, "RESET RETRY COUNTER");
        let mut crd = vec![0x00, 0x24, 0x00, 0x80, 0x10];
        crd.extend(new_pin.bytes());
        crd.extend(pin.bytes().chain(std::iter::repeat(0xFF)).take(8));
        assert_eq!(transmit(&card, &crd).1, 0x9000, "CHANGE REFERENCE DATA");
    }
    let state = persist::load(&sim.card()).expect("card file");
    let keys: Vec<Vec<u8>> = state.keys.values().map(|k| k.private.expose().to_vec()).collect();
    assert_eq!(keys.len(), 2, "two keys generated");
    let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let mgmt = card_applet_sim::DEFAULT_MANAGEMENT_KEY;
    let mut key_material = key_refs.clone();
    key_material.push(&mgmt);
    key_material.push(&mgmt[..8]);
    assert_log_free_of(&sim, &[pin.as_bytes(), new_pin.as_bytes(), puk.as_bytes(), PIN.as_bytes()], &key_material);
    // The redaction is visible: the VERIFY headers are logged, their data is not.
    let log = sim.log_text();
    assert!(log.contains("APDU 00 20 00 80 +9B (redacted)"), "no redacted VERIFY line:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// The command line without pcscd.

#[test]
fn new_refuses_to_overwrite_an_existing_card_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let card = dir.path().join("patient.card");
    let card_str = card.to_string_lossy().into_owned();
    let out = sim_cmd(&["new", "--out", &card_str, "--serial", "7"]);
    assert!(out.status.success(), "{}", show(&out));
    let before = std::fs::read(&card).expect("card file");
    let out = sim_cmd(&["new", "--out", &card_str, "--serial", "8"]);
    assert!(!out.status.success(), "card-sim new overwrote a card: {}", show(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("refusing to overwrite") && said.contains(&card_str), "stderr: {said}");
    assert_eq!(std::fs::read(&card).expect("card file"), before, "the card file changed");
    assert_eq!(persist::load(&card).expect("still valid").serial, 7);
}

/// A TCP port on localhost with nothing listening (bound then released).
fn unused_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[test]
fn serve_refuses_a_corrupt_or_truncated_card_file_and_names_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.card");
    let out = sim_cmd(&["new", "--out", &good.to_string_lossy(), "--serial", "9"]);
    assert!(out.status.success(), "{}", show(&out));
    let bytes = std::fs::read(&good).expect("card file");

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated.card", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        ("flipped.card", flipped, "corrupt"),
        ("garbage.card", b"this is not a card".to_vec(), "not a MedCard card file"),
        ("empty.card", Vec::new(), "not a MedCard card file"),
    ];
    // An unreachable vpcd: if serve wrongly accepted the file it would keep retrying, and the
    // exit deadline in sim_cmd fails the test.
    let vpcd = unused_port();
    for (name, content, why) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).expect("write card file");
        let path_str = path.to_string_lossy().into_owned();
        let out = sim_cmd(&["serve", "--card", &path_str, "--vpcd", &vpcd]);
        assert!(!out.status.success(), "{name}: serve accepted it: {}", show(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(&path_str), "{name}: the error does not name the file: {said}");
        assert!(said.contains(why), "{name}: expected {why:?} in: {said}");
        assert_eq!(std::fs::read(&path).expect("still there"), content, "{name}: the file was replaced");
    }
    let missing = dir.path().join("missing.card").to_string_lossy().into_owned();
    let out = sim_cmd(&["serve", "--card", &missing, "--vpcd", &vpcd]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(&missing), "{}", show(&out));
    assert!(!Path::new(&missing).exists(), "serve created a blank card for a missing file");
}

// ---------------------------------------------------------------------------------------------
// Reconnection, against a fake vpcd (restarting the machine's pcscd would disturb everything
// else using it).

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("frame length from card-sim");
    let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut payload).expect("frame payload from card-sim");
    payload
}

fn accept_within(listener: &TcpListener, child: &mut Child, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("card-sim exited ({status}) instead of (re)connecting");
                }
                assert!(Instant::now() < deadline, "card-sim did not (re)connect within {timeout:?}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn serve_reconnects_when_vpcd_drops_the_connection_or_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let card = dir.path().join("patient.card");
    let out = sim_cmd(&["new", "--out", &card.to_string_lossy(), "--serial", "11"]);
    assert!(out.status.success(), "{}", show(&out));

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake vpcd");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    let log = File::create(dir.path().join("card-sim.log")).expect("log");
    let child = Command::new(SIM)
        .args(["serve", "--card", &card.to_string_lossy(), "--vpcd", &addr.to_string()])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start card-sim serve");
    let mut guard = ChildGuard(Some(child));
    let c = guard.0.as_mut().expect("child");

    // 1st connection: power on, ATR, then vpcd drops it.
    let mut s = accept_within(&listener, c, Duration::from_secs(10));
    s.write_all(&[0, 1, 1, 0, 1, 4]).expect("power on + ATR request");
    assert_eq!(read_frame(&mut s), card_applet_sim::ATR.to_vec());
    drop(s);

    // 2nd connection: the card comes back by itself and answers APDUs.
    let mut s = accept_within(&listener, c, Duration::from_secs(10));
    let mut frame = vec![0, SELECT_PIV.len() as u8];
    frame.extend_from_slice(&SELECT_PIV);
    s.write_all(&frame).expect("SELECT");
    let resp = read_frame(&mut s);
    assert_eq!(resp.get(resp.len().saturating_sub(2)..), Some(&[0x90u8, 0x00][..]), "SELECT answer {resp:02X?}");

    // vpcd goes away entirely (pcscd restart): the port is closed for a while.
    drop(s);
    drop(listener);
    std::thread::sleep(Duration::from_millis(700));
    let listener = TcpListener::bind(addr).expect("rebind fake vpcd on the same port");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut s = accept_within(&listener, c, Duration::from_secs(15));
    s.write_all(&[0, 1, 4]).expect("ATR request");
    assert_eq!(read_frame(&mut s), card_applet_sim::ATR.to_vec());

    // SIGTERM: exit 0, socket closed (vpcd sees "card removed").
    send_signal(c.id(), "TERM");
    let status = wait_with_deadline(c, EXIT_TIMEOUT).expect("card-sim exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "card-sim sent {rest:02X?} after SIGTERM");
}

/// Kills the child on drop (for tests without a [`Sim`]).
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn help_explains_what_serve_needs_how_it_stops_and_what_it_logs() {
    let out = sim_cmd(&["serve", "--help"]);
    assert!(out.status.success(), "{}", show(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for want in ["scripts/setup.sh", "Virtual PCD 00 00", "SIGTERM", "exits 0", "never logged", "35963"] {
        assert!(help.contains(want), "`card-sim serve --help` does not mention {want:?}:\n{help}");
    }
    let out = sim_cmd(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for want in ["new", "serve", "show", "PIN 123456"] {
        assert!(help.contains(want), "`card-sim --help` does not mention {want:?}:\n{help}");
    }
}
