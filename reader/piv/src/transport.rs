//! Transports: "send a command APDU, get the response APDU (data ‖ SW1 SW2)".
//!
//! - [`PcscTransport`]: a card in a PC/SC reader (pcsc-lite / WinSCard), connected shared, with
//!   [`PcscTransport::transaction`] for exclusive access over several commands, plus
//!   [`PcscContext`] to list readers with card presence and to wait for insert/remove events.
//! - `SimTransport` (cargo feature `sim`): the card simulator in the same process
//!   (`card_applet_sim::Card::process`), for tests and the demo mode.
//!
//! All types are `Send`, so a GUI can run card work on a worker thread.

use std::ffi::CString;
use std::time::Duration;

use thiserror::Error;

/// A transport failure: the command may or may not have reached the card.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The card was taken out of the reader (or the virtual card went away).
    #[error("card removed from reader '{reader}': insert the card and try again")]
    CardRemoved { reader: String },
    /// The card was reset by another application; its security status (PIN, management key) is lost.
    #[error("the card in reader '{reader}' was reset by another application: try again")]
    CardReset { reader: String },
    /// There is no card in the reader.
    #[error("no card in reader '{reader}': insert a card")]
    NoCard { reader: String },
    /// No reader by that name.
    #[error("no reader named '{reader}' (readers: {available})")]
    NoSuchReader { reader: String, available: String },
    /// The reader vanished (unplugged).
    #[error("reader '{reader}' is no longer available (unplugged?)")]
    ReaderUnavailable { reader: String },
    /// Another application holds the card exclusively.
    #[error("the card in reader '{reader}' is in use by another application")]
    Sharing { reader: String },
    /// The smart-card service (pcscd) is not running or not reachable.
    #[error("the smart-card service is not available (is pcscd running?): {0}")]
    NoService(#[source] pcsc::Error),
    /// A wait for a reader event ran out of time.
    #[error("timed out after {0:?} waiting for a card event")]
    Timeout(Duration),
    /// The response APDU was shorter than its two status bytes.
    #[error("the card answered {got} byte(s), fewer than the 2 status bytes")]
    ShortResponse { got: usize },
    /// The command APDU is larger than the transport can send.
    #[error("command APDU of {len} bytes is too long for the transport")]
    CommandTooLong { len: usize },
    /// A reader name with a NUL byte.
    #[error("invalid reader name (contains a NUL byte)")]
    BadReaderName,
    /// Any other PC/SC error, with the operation that failed.
    #[error("PC/SC {operation} failed on reader '{reader}': {source}")]
    Pcsc {
        operation: &'static str,
        reader: String,
        #[source]
        source: pcsc::Error,
    },
}

/// Something that carries APDUs to one card.
pub trait Transport {
    /// Send a command APDU and return the response APDU (data ‖ SW1 SW2, at least 2 bytes).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// Warm-reset the card: its security status (PIN, management key) is cleared.
    fn reset(&mut self) -> Result<(), TransportError>;
    /// The reader's name, for messages.
    fn reader_name(&self) -> &str;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
}

fn check_response(resp: Vec<u8>) -> Result<Vec<u8>, TransportError> {
    if resp.len() < 2 {
        return Err(TransportError::ShortResponse { got: resp.len() });
    }
    Ok(resp)
}

#[cfg(feature = "sim")]
mod sim;
#[cfg(feature = "sim")]
pub use sim::{SIM_READER, SimTransport};

// ---------------------------------------------------------------------------------------------
// PC/SC.

/// Largest response we accept from one transmit: extended length 65536 + SW.
const RECV_BUFFER: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;

fn pcsc_error(operation: &'static str, reader: &str, e: pcsc::Error) -> TransportError {
    let reader = reader.to_owned();
    match e {
        pcsc::Error::RemovedCard => TransportError::CardRemoved { reader },
        pcsc::Error::ResetCard => TransportError::CardReset { reader },
        pcsc::Error::NoSmartcard => TransportError::NoCard { reader },
        pcsc::Error::ReaderUnavailable | pcsc::Error::UnknownReader => TransportError::ReaderUnavailable { reader },
        pcsc::Error::SharingViolation => TransportError::Sharing { reader },
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::NoReadersAvailable if operation == "establish" => {
            TransportError::NoService(e)
        }
        source => TransportError::Pcsc { operation, reader, source },
    }
}

/// A reader and whether it holds a card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    /// The reader's name, as PC/SC reports it.
    pub name: String,
    /// A card is in the reader.
    pub card_present: bool,
    /// The card is held exclusively by another application.
    pub exclusive: bool,
    /// The card's ATR (hex), when a card is present.
    pub atr: Option<String>,
}

/// A reader event from [`PcscContext::wait_for_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardEvent {
    /// A card is now present.
    Inserted,
    /// The reader is now empty.
    Removed,
}

/// A PC/SC context (one per thread that talks to pcscd).
pub struct PcscContext {
    ctx: pcsc::Context,
}

impl PcscContext {
    /// Connect to the smart-card service.
    pub fn establish() -> Result<Self, TransportError> {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(TransportError::NoService)?;
        Ok(Self { ctx })
    }

    /// The readers' names (empty if there are none).
    pub fn reader_names(&self) -> Result<Vec<String>, TransportError> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names.iter().map(|n| n.to_string_lossy().into_owned()).collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(pcsc_error("list readers", "", e)),
        }
    }

    fn cname(reader: &str) -> Result<CString, TransportError> {
        CString::new(reader).map_err(|_| TransportError::BadReaderName)
    }

    /// The current state of `readers` (no waiting).
    fn states(&self, readers: &[String]) -> Result<Vec<pcsc::ReaderState>, TransportError> {
        let mut states = readers
            .iter()
            .map(|r| Ok(pcsc::ReaderState::new(Self::cname(r)?, pcsc::State::UNAWARE)))
            .collect::<Result<Vec<_>, TransportError>>()?;
        if states.is_empty() {
            return Ok(states);
        }
        match self.ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => Ok(states),
            Err(e) => Err(pcsc_error("get status", "", e)),
        }
    }

    /// Every reader with its card presence.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, TransportError> {
        let names = self.reader_names()?;
        let states = self.states(&names)?;
        Ok(names
            .into_iter()
            .zip(states.iter())
            .map(|(name, st)| {
                let ev = st.event_state();
                let card_present = ev.contains(pcsc::State::PRESENT) && !ev.contains(pcsc::State::MUTE);
                ReaderInfo {
                    name,
                    card_present,
                    exclusive: ev.contains(pcsc::State::EXCLUSIVE),
                    atr: card_present.then(|| hex::encode_upper(st.atr())),
                }
            })
            .collect())
    }

    fn require_reader(&self, reader: &str) -> Result<(), TransportError> {
        let names = self.reader_names()?;
        if names.iter().any(|n| n == reader) {
            Ok(())
        } else {
            Err(TransportError::NoSuchReader {
                reader: reader.to_owned(),
                available: if names.is_empty() { "none".to_owned() } else { names.join(", ") },
            })
        }
    }

    /// Is a card in `reader` now?
    pub fn card_present(&self, reader: &str) -> Result<bool, TransportError> {
        self.require_reader(reader)?;
        let states = self.states(&[reader.to_owned()])?;
        Ok(states.first().is_some_and(|s| s.event_state().contains(pcsc::State::PRESENT)))
    }

    /// Block until a card is inserted into or removed from `reader` (relative to its state
    /// now), at most `timeout`. For a GUI: run it on a worker thread.
    pub fn wait_for_change(&self, reader: &str, timeout: Duration) -> Result<CardEvent, TransportError> {
        self.require_reader(reader)?;
        let mut states = self.states(&[reader.to_owned()])?;
        let was_present = states.first().is_some_and(|s| s.event_state().contains(pcsc::State::PRESENT));
        let deadline = std::time::Instant::now() + timeout;
        loop {
            for s in &mut states {
                s.sync_current_state();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.ctx.get_status_change(left, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Err(TransportError::Timeout(timeout)),
                Err(e) => return Err(pcsc_error("wait for status change", reader, e)),
            }
            let st = states.first().map(pcsc::ReaderState::event_state).unwrap_or(pcsc::State::UNAVAILABLE);
            if st.intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE) {
                return Err(TransportError::ReaderUnavailable { reader: reader.to_owned() });
            }
            let present = st.contains(pcsc::State::PRESENT);
            if present != was_present {
                return Ok(if present { CardEvent::Inserted } else { CardEvent::Removed });
            }
            if left.is_zero() {
                return Err(TransportError::Timeout(timeout));
            }
        }
    }

    /// Connect (shared, T=0 or T=1) to the card in `reader`.
    pub fn connect(&self, reader: &str) -> Result<PcscTransport, TransportError> {
        self.require_reader(reader)?;
        let name = Self::cname(reader)?;
        let card = self.ctx.connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY).map_err(|e| pcsc_error("connect", reader, e))?;
        Ok(PcscTransport { card, reader: reader.to_owned() })
    }
}

/// A card connected through PC/SC (shared mode). Single commands may be interleaved with other
/// applications; use [`PcscTransport::transaction`] for a sequence that must not be.
pub struct PcscTransport {
    card: pcsc::Card,
    reader: String,
}

fn pcsc_transmit(card: &pcsc::Card, reader: &str, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
    if apdu.len() > pcsc::MAX_BUFFER_SIZE_EXTENDED {
        return Err(TransportError::CommandTooLong { len: apdu.len() });
    }
    let mut buf = vec![0u8; RECV_BUFFER];
    let resp = card.transmit(apdu, &mut buf).map_err(|e| pcsc_error("transmit", reader, e))?;
    check_response(resp.to_vec())
}

impl PcscTransport {
    /// Run `f` with exclusive access to the card (SCardBeginTransaction … SCardEndTransaction).
    /// The transaction ends when `f` returns, leaving the card as it is.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&mut PcscTransaction<'_>) -> R) -> Result<R, TransportError> {
        let reader = self.reader.clone();
        let tx = self.card.transaction().map_err(|e| pcsc_error("begin transaction", &reader, e))?;
        let mut t = PcscTransaction { tx, reader };
        let out = f(&mut t);
        // Ending fails if the card went away; `f` has reported that already.
        let _ = t.tx.end(pcsc::Disposition::LeaveCard);
        Ok(out)
    }

    /// Disconnect, resetting the card so that no security status lingers for the next user.
    pub fn disconnect(self) -> Result<(), TransportError> {
        let reader = self.reader;
        self.card.disconnect(pcsc::Disposition::ResetCard).map_err(|(_, e)| pcsc_error("disconnect", &reader, e))
    }

    /// The card's ATR.
    pub fn atr(&self) -> Result<Vec<u8>, TransportError> {
        let st = self.card.status2_owned().map_err(|e| pcsc_error("status", &self.reader, e))?;
        Ok(st.atr().to_vec())
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        pcsc_transmit(&self.card, &self.reader, apdu)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.card
            .reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::ANY, pcsc::Disposition::ResetCard)
            .map_err(|e| pcsc_error("reset", &self.reader, e))
    }

    fn reader_name(&self) -> &str {
        &self.reader
    }
}

/// Exclusive access to a PC/SC card for the duration of [`PcscTransport::transaction`].
pub struct PcscTransaction<'a> {
    tx: pcsc::Transaction<'a>,
    reader: String,
}

impl Transport for PcscTransaction<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        pcsc_transmit(&self.tx, &self.reader, apdu)
    }

    /// Not available inside a transaction (it would end it): reports the card as reset so the
    /// caller re-authenticates after the transaction.
    fn reset(&mut self) -> Result<(), TransportError> {
        Err(TransportError::CardReset { reader: self.reader.clone() })
    }

    fn reader_name(&self) -> &str {
        &self.reader
    }
}
