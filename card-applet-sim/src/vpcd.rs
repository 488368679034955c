//! The vpcd connector: a thin shell that speaks vpcd's socket protocol around a [`Card`].
//!
//! vpcd (vsmartcard's virtual reader driver for pcscd) listens on TCP (reader
//! "Virtual PCD 00 00" on port 35963, "… 00 01" on 35964); the virtual card connects to it.
//! Every message either way is a frame: a 2-byte big-endian length, then that many bytes.
//! From vpcd, a 1-byte payload is a control code ([`Control`]): power off, power on, reset, or
//! ATR request (answered with the ATR in a frame); a longer payload is a command APDU, answered
//! with the response APDU. The connection existing means "card inserted"; closing it means
//! "card removed".
//!
//! The framing ([`FrameDecoder`], [`encode_frame`]) and the dispatch ([`Session::handle`]) are
//! pure; [`serve`] adds the socket, reconnection with backoff and the shutdown flag.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Card;

/// vpcd's default address: reader "Virtual PCD 00 00".
pub const DEFAULT_ADDR: &str = "127.0.0.1:35963";

/// A control code from vpcd (1-byte frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// 0: power off (clears the card's security status).
    PowerOff,
    /// 1: power on.
    PowerOn,
    /// 2: warm reset (clears the card's security status).
    Reset,
    /// 4: send the ATR.
    GetAtr,
    /// Any other code: logged and ignored.
    Unknown(u8),
}

impl From<u8> for Control {
    fn from(b: u8) -> Self {
        match b {
            0 => Control::PowerOff,
            1 => Control::PowerOn,
            2 => Control::Reset,
            4 => Control::GetAtr,
            other => Control::Unknown(other),
        }
    }
}

/// One message from vpcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A 1-byte payload.
    Control(Control),
    /// A payload of 2 bytes or more: a command APDU.
    Apdu(Vec<u8>),
    /// A zero-length payload (vpcd never sends one; ignored).
    Empty,
}

/// Accumulates bytes from the socket and yields complete frames. Never panics, whatever
/// arrives; memory is bounded by one maximal frame (2 + 65535 bytes) plus one read.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has fully arrived.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let (len, rest) = self.buf.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (payload, _) = rest.split_at_checked(len)?;
        let frame = match payload {
            [] => Frame::Empty,
            [code] => Frame::Control(Control::from(*code)),
            apdu => Frame::Apdu(apdu.to_vec()),
        };
        self.buf.drain(..2 + len);
        Some(frame)
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// A payload too long for a vpcd frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("payload of {len} bytes does not fit a vpcd frame (max 65535)")]
pub struct FrameTooLong {
    pub len: usize,
}

/// Frame `payload` for vpcd: 2-byte big-endian length, then the payload.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameTooLong> {
    let len = u16::try_from(payload.len()).map_err(|_| FrameTooLong { len: payload.len() })?;
    let mut out = Vec::with_capacity(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// INS codes whose command data (and response data) may hold PINs, PUKs, key material or the
/// patient's data, so their data is never logged (the header, lengths and status word are):
/// VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, GENERAL AUTHENTICATE (9B
/// witness/challenge/response), Yubico SET MANAGEMENT KEY and IMPORT KEY, and PUT DATA / GET
/// DATA (data objects: the MedCard credential and consent token name the patient).
const SENSITIVE_INS: [u8; 8] = [0x20, 0x24, 0x2C, 0x87, 0xFF, 0xFE, 0xDB, 0xCB];

/// GET RESPONSE: sensitive when it pages the response of a sensitive command.
const INS_GET_RESPONSE: u8 = 0xC0;

/// A log-safe summary of a command APDU: the header and lengths, and the data only when the
/// command cannot carry secrets (and then only at trace level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApduSummary {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// Bytes after the 4-byte header (Lc, data, Le as received).
    pub body_len: usize,
    /// True if the data must never be logged.
    pub sensitive: bool,
}

impl ApduSummary {
    /// Summarize `apdu` (any bytes; a short APDU gives zeros for the missing header bytes).
    pub fn of(apdu: &[u8]) -> Self {
        let byte = |i: usize| apdu.get(i).copied().unwrap_or(0);
        let ins = byte(1);
        Self {
            cla: byte(0),
            ins,
            p1: byte(2),
            p2: byte(3),
            body_len: apdu.len().saturating_sub(4),
            sensitive: SENSITIVE_INS.contains(&ins),
        }
    }
}

/// The status word of a response APDU (its last two bytes), if it has one.
pub fn status_word(response: &[u8]) -> Option<u16> {
    response.split_last_chunk::<2>().map(|(_, sw)| u16::from_be_bytes(*sw))
}

/// The card as vpcd sees it: dispatches frames to the [`Card`].
pub struct Session<'a> {
    card: &'a mut Card,
    /// The card is paging (`61xx`) the response of a sensitive command (e.g. an ECDH shared
    /// secret fetched with a short Le), so the GET RESPONSEs that follow are sensitive too.
    paging_sensitive: bool,
}

impl<'a> Session<'a> {
    pub fn new(card: &'a mut Card) -> Self {
        Self { card, paging_sensitive: false }
    }

    /// Handle one frame; returns the payload to send back, if any.
    pub fn handle(&mut self, frame: Frame) -> Option<Vec<u8>> {
        match frame {
            Frame::Control(Control::PowerOff) => {
                tracing::debug!("vpcd: power off");
                self.card.power_off();
                None
            }
            Frame::Control(Control::PowerOn) => {
                tracing::debug!("vpcd: power on");
                // A cold start: the security status starts cleared.
                self.card.power_off();
                None
            }
            Frame::Control(Control::Reset) => {
                tracing::debug!("vpcd: reset");
                self.card.reset();
                None
            }
            Frame::Control(Control::GetAtr) => {
                tracing::debug!("vpcd: ATR request");
                Some(self.card.atr())
            }
            Frame::Control(Control::Unknown(code)) => {
                tracing::warn!(code, "vpcd: unknown control code ignored");
                None
            }
            Frame::Empty => {
                tracing::warn!("vpcd: empty frame ignored");
                None
            }
            Frame::Apdu(apdu) => {
                let mut s = ApduSummary::of(&apdu);
                if s.ins == INS_GET_RESPONSE && self.paging_sensitive {
                    s.sensitive = true;
                }
                let response = self.card.process(&apdu);
                let sw = status_word(&response).unwrap_or(0);
                self.paging_sensitive = s.sensitive && sw >> 8 == 0x61;
                tracing::debug!(
                    "APDU {:02X} {:02X} {:02X} {:02X} +{}B{} -> SW {:04X} +{}B",
                    s.cla,
                    s.ins,
                    s.p1,
                    s.p2,
                    s.body_len,
                    if s.sensitive { " (redacted)" } else { "" },
                    sw,
                    response.len().saturating_sub(2),
                );
                if !s.sensitive {
                    tracing::trace!(command = %Hex(&apdu), response = %Hex(&response), "APDU data");
                }
                Some(response)
            }
        }
    }
}

/// Hex for trace logs (non-sensitive APDUs only).
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// How [`serve`] behaves around connection loss.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// First wait before reconnecting.
    pub backoff_min: Duration,
    /// Longest wait between reconnection attempts.
    pub backoff_max: Duration,
    /// How often a blocked read wakes up to look at the shutdown flag.
    pub poll: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(2), poll: Duration::from_millis(100) }
    }
}

/// Why [`serve`] stopped other than by the shutdown flag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address does not resolve to anything.
    #[error("vpcd address {addr:?} is not a valid HOST:PORT: {source}")]
    BadAddress {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// How long one response may take to write before the connection counts as lost.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How one connection ended.
enum Ended {
    Shutdown,
    Lost,
}

/// Serve `card` to vpcd at `addr` until `shutdown` is set. Reconnects with backoff whenever
/// vpcd is unreachable or drops the connection (pcscd restart). On shutdown the socket is
/// closed, which vpcd reports as "card removed".
pub fn serve(card: &mut Card, addr: &str, shutdown: &AtomicBool, options: &ServeOptions) -> Result<(), ServeError> {
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(|source| ServeError::BadAddress { addr: addr.to_owned(), source })?.collect();
    let mut backoff = options.backoff_min;
    let mut warned = false;
    while !shutdown.load(Ordering::SeqCst) {
        let stream = addrs.iter().find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).ok());
        let Some(stream) = stream else {
            if !warned {
                tracing::warn!(addr, "vpcd not reachable (is pcscd running with vpcd?); retrying");
                warned = true;
            } else {
                tracing::debug!(addr, ?backoff, "vpcd not reachable; retrying");
            }
            sleep_unless(shutdown, backoff, options.poll);
            backoff = (backoff * 2).min(options.backoff_max);
            continue;
        };
        tracing::info!(addr, "connected to vpcd: card inserted");
        warned = false;
        backoff = options.backoff_min;
        match serve_connection(card, stream, shutdown, options) {
            Ended::Shutdown => break,
            Ended::Lost => {
                tracing::warn!(addr, "vpcd closed the connection; reconnecting");
                card.power_off();
                sleep_unless(shutdown, backoff, options.poll);
            }
        }
    }
    card.power_off();
    tracing::info!("stopped: card removed");
    Ok(())
}

/// Serve one connection until it drops or `shutdown` is set.
fn serve_connection(card: &mut Card, mut stream: TcpStream, shutdown: &AtomicBool, options: &ServeOptions) -> Ended {
    if let Err(e) = stream
        .set_read_timeout(Some(options.poll))
        // A vpcd that stops reading must not block us forever (nor hide the shutdown flag).
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true))
    {
        tracing::warn!(error = %e, "could not configure the vpcd socket");
        return Ended::Lost;
    }
    let mut decoder = FrameDecoder::new();
    let mut session = Session::new(card);
    let mut buf = [0u8; 4096];
    ack_promptly(&stream);
    loop {
        if shutdown.load(Ordering::SeqCst) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Ended::Shutdown;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ended::Lost,
            Ok(n) => {
                ack_promptly(&stream);
                n
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "vpcd socket read failed");
                return Ended::Lost;
            }
        };
        decoder.push(buf.get(..n).unwrap_or_default());
        while let Some(frame) = decoder.next_frame() {
            let Some(reply) = session.handle(frame) else {
                continue;
            };
            let framed = match encode_frame(&reply) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "card response too long; answering 6F00");
                    vec![0, 2, 0x6F, 0x00]
                }
            };
            if let Err(e) = stream.write_all(&framed) {
                tracing::warn!(error = %e, "vpcd socket write failed");
                return Ended::Lost;
            }
        }
    }
}

/// Acknowledge received data at once instead of delaying the ACK.
///
/// vpcd sends every frame with two `send()` calls (the 2-byte length, then the payload) on a
/// socket with Nagle's algorithm on, so the payload waits until the length is acknowledged;
/// with Linux's delayed ACK that is 40 ms per APDU (measured: a sign round trip through pcscd
/// took 49 ms, against 0.2 ms for the signature). TCP_QUICKACK is not sticky (the kernel may
/// fall back to delayed ACKs), so it is re-armed after every read.
#[cfg(target_os = "linux")]
fn ack_promptly(stream: &TcpStream) {
    if let Err(e) = rustix::net::sockopt::set_tcp_quickack(stream, true) {
        tracing::trace!(error = %e, "could not set TCP_QUICKACK on the vpcd socket");
    }
}

/// Other systems: delayed ACKs stay (a slower round trip, same behaviour).
#[cfg(not(target_os = "linux"))]
fn ack_promptly(_stream: &TcpStream) {}

/// Sleep for `total`, waking every `poll` to return early if `shutdown` is set.
fn sleep_unless(shutdown: &AtomicBool, total: Duration, poll: Duration) {
    let deadline = std::time::Instant::now() + total;
    while !shutdown.load(Ordering::SeqCst) {
        let now = std::time::Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{MemoryStore, PersistentState};
    use proptest::prelude::*;

    fn card() -> Card {
        Card::new(PersistentState::blank(42), Box::new(MemoryStore::default()))
    }

    #[test]
    fn decoder_yields_control_and_apdu_frames() {
        let mut d = FrameDecoder::new();
        d.push(&[0, 1, 4, 0, 5, 0x00, 0xA4, 0x04, 0x00, 0x00, 0, 1, 0]);
        assert_eq!(d.next_frame(), Some(Frame::Control(Control::GetAtr)));
        assert_eq!(d.next_frame(), Some(Frame::Apdu(vec![0x00, 0xA4, 0x04, 0x00, 0x00])));
        assert_eq!(d.next_frame(), Some(Frame::Control(Control::PowerOff)));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn decoder_waits_for_a_frame_split_across_reads() {
        let mut d = FrameDecoder::new();
        d.push(&[0]);
        assert_eq!(d.next_frame(), None);
        d.push(&[4, 0x00, 0xCA]);
        assert_eq!(d.next_frame(), None);
        d.push(&[0x7E, 0x00]);
        assert_eq!(d.next_frame(), Some(Frame::Apdu(vec![0x00, 0xCA, 0x7E, 0x00])));
    }

    #[test]
    fn decoder_maps_control_codes() {
        let mut d = FrameDecoder::new();
        for code in [0u8, 1, 2, 4, 3, 0xFF] {
            d.push(&[0, 1, code]);
        }
        d.push(&[0, 0]);
        let got: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
        assert_eq!(
            got,
            vec![
                Frame::Control(Control::PowerOff),
                Frame::Control(Control::PowerOn),
                Frame::Control(Control::Reset),
                Frame::Control(Control::GetAtr),
                Frame::Control(Control::Unknown(3)),
                Frame::Control(Control::Unknown(0xFF)),
                Frame::Empty,
            ]
        );
    }

    #[test]
    fn encode_frame_prefixes_big_endian_length() {
        assert_eq!(encode_frame(&[0x90, 0x00]).expect("fits"), vec![0, 2, 0x90, 0x00]);
        let long = vec![0u8; 0x0123];
        assert_eq!(&encode_frame(&long).expect("fits")[..2], &[0x01, 0x23]);
    }

    #[test]
    fn encode_frame_refuses_over_65535_bytes() {
        assert_eq!(encode_frame(&vec![0u8; 65536]), Err(FrameTooLong { len: 65536 }));
    }

    #[test]
    fn summaries_mark_pin_and_key_commands_sensitive() {
        for ins in [0x20u8, 0x24, 0x2C, 0x87, 0xFF, 0xFE, 0xCB, 0xDB] {
            assert!(ApduSummary::of(&[0, ins, 0, 0x80, 8, 1, 2, 3, 4, 5, 6, 7, 8]).sensitive);
        }
        for ins in [0xA4u8, 0x47, 0xFD, 0xF8] {
            assert!(!ApduSummary::of(&[0, ins, 0, 0]).sensitive);
        }
        let s = ApduSummary::of(&[0x00, 0x20]);
        assert_eq!((s.cla, s.ins, s.p1, s.p2, s.body_len), (0, 0x20, 0, 0, 0));
    }

    #[test]
    fn status_word_is_the_last_two_bytes() {
        assert_eq!(status_word(&[1, 2, 0x90, 0x00]), Some(0x9000));
        assert_eq!(status_word(&[0x6A, 0x82]), Some(0x6A82));
        assert_eq!(status_word(&[0x90]), None);
    }

    /// A `MakeWriter` collecting log output in memory.
    #[derive(Clone, Default)]
    struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for LogBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with a TRACE-level subscriber writing into a buffer; returns its result and the log.
    fn traced<R>(f: impl FnOnce() -> R) -> (R, String) {
        let log = LogBuf::default();
        let sink = log.clone();
        let subscriber =
            tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || sink.clone()).finish();
        let r = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8 log");
        (r, text)
    }

    #[test]
    fn get_response_paging_a_sensitive_answer_is_redacted_in_the_trace_log() {
        let mut card = card();
        let (challenge, text) = traced(|| {
            let mut s = Session::new(&mut card);
            let select = vec![0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
            assert_eq!(status_word(&s.handle(Frame::Apdu(select)).expect("answer")), Some(0x9000));
            // Management-key challenge (9B) with Le = 4: the card pages the rest with 61xx.
            let first = s.handle(Frame::Apdu(vec![0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x81, 0x00, 0x04])).expect("answer");
            assert_eq!(status_word(&first), Some(0x6108), "{first:02X?}");
            let rest = s.handle(Frame::Apdu(vec![0x00, 0xC0, 0x00, 0x00, 0x08])).expect("answer");
            assert_eq!(status_word(&rest), Some(0x9000), "{rest:02X?}");
            // A later, unrelated GET RESPONSE is logged normally again.
            let _ = s.handle(Frame::Apdu(vec![0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x02, 0x00]));
            let _ = s.handle(Frame::Apdu(vec![0x00, 0xC0, 0x00, 0x00, 0x00]));
            rest[..rest.len() - 2].to_vec()
        });
        assert!(text.contains("APDU 00 C0 00 00 +1B (redacted) -> SW 9000 +8B"), "{text}");
        assert!(text.contains("APDU 00 C0 00 00 +1B -> SW"), "{text}");
        let hex: String = challenge.iter().map(|b| format!("{b:02X}")).collect();
        assert!(!text.contains(&hex), "the paged challenge {hex} is in the log:\n{text}");
    }

    /// Issue 13: the trace log printed PUT DATA / GET DATA in full, so an object holding the
    /// patient id (and its GET RESPONSE pages) ended up in the log.
    #[test]
    fn put_data_and_get_data_with_the_patient_id_are_redacted_in_the_trace_log() {
        let patient = b"P-1001 Ada Lovelace";
        let mut state = PersistentState::blank(42);
        let mut object = vec![0x53, patient.len() as u8];
        object.extend_from_slice(patient);
        state.objects.insert(0x5F_C1_09, crate::state::Blob(patient.to_vec()));
        let mut card = Card::new(state, Box::new(MemoryStore::default()));
        let ((), text) = traced(|| {
            let mut s = Session::new(&mut card);
            let select = vec![0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];
            let _ = s.handle(Frame::Apdu(select));
            // GET DATA of the object, whole, then with a short Le (paged by GET RESPONSE).
            let get = vec![0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x09, 0x00];
            let whole = s.handle(Frame::Apdu(get)).expect("answer");
            assert_eq!(status_word(&whole), Some(0x9000), "{whole:02X?}");
            let short = vec![0x00, 0xCB, 0x3F, 0xFF, 0x05, 0x5C, 0x03, 0x5F, 0xC1, 0x09, 0x04];
            let first = s.handle(Frame::Apdu(short)).expect("answer");
            if status_word(&first).is_some_and(|sw| sw >> 8 == 0x61) {
                let _ = s.handle(Frame::Apdu(vec![0x00, 0xC0, 0x00, 0x00, 0x00]));
            }
            // PUT DATA carrying the patient id (refused here: no management key; logged anyway).
            let mut put = vec![0x00, 0xDB, 0x3F, 0xFF, 0];
            put.extend_from_slice(&[0x5C, 0x03, 0x5F, 0xC1, 0x09]);
            put.extend_from_slice(&object);
            put[4] = (put.len() - 5) as u8;
            let _ = s.handle(Frame::Apdu(put));
        });
        let hex: String = patient[..6].iter().map(|b| format!("{b:02X}")).collect();
        assert!(!text.contains(&hex), "the patient id ({hex}) is in the log:\n{text}");
        assert!(!text.contains("P-1001"), "{text}");
        // The header, lengths and status words stay.
        assert!(text.contains("APDU 00 CB 3F FF +7B (redacted) -> SW 9000"), "{text}");
        assert!(text.contains("APDU 00 DB 3F FF"), "{text}");
    }

    #[test]
    fn session_answers_atr_request_with_the_cards_atr_and_apdus_with_responses() {
        let mut card = card();
        let atr = card.atr();
        let mut s = Session::new(&mut card);
        assert_eq!(s.handle(Frame::Control(Control::GetAtr)), Some(atr));
        assert_eq!(s.handle(Frame::Control(Control::PowerOn)), None);
        assert_eq!(s.handle(Frame::Control(Control::Reset)), None);
        assert_eq!(s.handle(Frame::Control(Control::PowerOff)), None);
        assert_eq!(s.handle(Frame::Control(Control::Unknown(9))), None);
        assert_eq!(s.handle(Frame::Empty), None);
        let resp = s.handle(Frame::Apdu(vec![0x00, 0xEE, 0x00, 0x00])).expect("an APDU is always answered");
        assert!(resp.len() >= 2, "response has a status word: {resp:02X?}");
    }

    #[test]
    fn serve_talks_to_a_fake_vpcd_and_stops_on_the_shutdown_flag() {
        use std::net::TcpListener;
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let shutdown = Arc::new(AtomicBool::new(false));
        let stop = shutdown.clone();
        let fake_vpcd = std::thread::spawn(move || {
            let read_frame = |s: &mut TcpStream| {
                let mut len = [0u8; 2];
                s.read_exact(&mut len).expect("len");
                let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut payload).expect("payload");
                payload
            };
            // First connection: vpcd "goes away" after one exchange.
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(&[0, 1, 1, 0, 1, 4]).expect("power on + ATR");
            let atr = read_frame(&mut s);
            drop(s);
            // The card reconnects (pcscd restart).
            let (mut s, _) = listener.accept().expect("accept again");
            s.write_all(&[0, 4, 0x00, 0xEE, 0x00, 0x00]).expect("apdu");
            let resp = read_frame(&mut s);
            stop.store(true, Ordering::SeqCst);
            // The card closes the socket on shutdown: read returns EOF.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            (atr, resp, rest)
        });
        let mut card = card();
        let opts = ServeOptions {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            poll: Duration::from_millis(10),
        };
        serve(&mut card, &addr, &shutdown, &opts).expect("serve");
        let (atr, resp, rest) = fake_vpcd.join().expect("fake vpcd");
        assert_eq!(atr, card.atr());
        assert!(resp.len() >= 2);
        assert!(rest.is_empty(), "nothing sent after shutdown: {rest:02X?}");
    }

    #[test]
    fn serve_refuses_an_unresolvable_address() {
        let shutdown = AtomicBool::new(false);
        let err = serve(&mut card(), "not an address", &shutdown, &ServeOptions::default());
        assert!(matches!(err, Err(ServeError::BadAddress { .. })));
    }

    proptest! {
        #[test]
        fn decoder_never_panics_and_never_loses_bytes(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)
        ) {
            let mut d = FrameDecoder::new();
            let total: usize = chunks.iter().map(Vec::len).sum();
            let mut consumed = 0usize;
            for c in &chunks {
                d.push(c);
                while let Some(f) = d.next_frame() {
                    consumed += 2 + match f {
                        Frame::Empty => 0,
                        Frame::Control(_) => 1,
                        Frame::Apdu(a) => a.len(),
                    };
                }
            }
            prop_assert_eq!(consumed + d.pending(), total);
        }

        #[test]
        fn decoder_round_trips_encoded_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 2..300), 0..10),
            split in 1usize..64
        ) {
            let mut stream = Vec::new();
            for p in &payloads {
                stream.extend(encode_frame(p).expect("fits"));
            }
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for c in stream.chunks(split) {
                d.push(c);
                while let Some(f) = d.next_frame() {
                    got.push(f);
                }
            }
            let want: Vec<_> = payloads.into_iter().map(Frame::Apdu).collect();
            prop_assert_eq!(got, want);
        }
    }
}
