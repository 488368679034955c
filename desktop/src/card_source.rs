//! Where the card is: the in-process simulator (demo mode and tests: a "reader" whose card the
//! user inserts and removes with buttons) or a PC/SC reader (real cards, YubiKeys, or `card-sim
//! serve` through vpcd). One type so the views do not care which.
//!
//! Card work runs on a worker thread ([`crate::jobs`]); [`CardSource::with_card`] gives it a
//! [`Piv`] over the card for the length of one closure (one PC/SC transaction, reset after).

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use card_applet_sim::Card;
use reader::{CardEvent, PcscContext, Piv, PivError, SimTransport, Transport, TransportError};

/// Whether a card is in the reader, as the kiosk needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A card is in the reader.
    Card,
    /// The reader is there and empty.
    Empty,
    /// No reader (unplugged, pcscd not running, ...): what the user should do.
    NoReader(String),
}

/// The in-process reader: the simulated card is either in the reader or "in the patient's hand".
#[derive(Clone)]
pub struct SimSlot {
    inner: Arc<Mutex<SimInner>>,
}

struct SimInner {
    transport: SimTransport,
    hand: Option<Card>,
}

impl SimSlot {
    /// A reader with `card` in the patient's hand (not inserted).
    #[must_use]
    pub fn new(card: Card) -> Self {
        let mut transport = SimTransport::new(card);
        let hand = transport.remove_card();
        SimSlot { inner: Arc::new(Mutex::new(SimInner { transport, hand })) }
    }

    fn lock(&self) -> MutexGuard<'_, SimInner> {
        // A worker that panicked while holding the card leaves it usable: the card keeps its own state.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts the card into the reader (no-op when it already is).
    pub fn insert(&self) {
        let mut g = self.lock();
        if let Some(card) = g.hand.take() {
            g.transport.insert_card(card);
        }
    }

    /// Takes the card out of the reader (no-op when it is out).
    pub fn remove(&self) {
        let mut g = self.lock();
        if let Some(card) = g.transport.remove_card() {
            g.hand = Some(card);
        }
    }

    /// Whether the card is in the reader.
    #[must_use]
    pub fn inserted(&self) -> bool {
        self.lock().transport.card().is_some()
    }

    /// Runs `f` on the card in the reader **without** resetting it afterwards, so a PIN verified
    /// in one call still counts in the next (a staff session holds its card this way). Fails with
    /// "card removed" when the card is out.
    pub fn with_card_kept<R>(&self, f: impl FnOnce(&mut Piv<&mut dyn Transport>) -> R) -> R {
        let mut g = self.lock();
        let t: &mut dyn Transport = &mut g.transport;
        let mut piv = Piv::new(t);
        f(&mut piv)
    }

    /// Resets the card in the reader (its PIN status is cleared), if it is in.
    pub fn reset_card(&self) {
        let mut g = self.lock();
        if g.transport.card().is_some() {
            let _ = g.transport.reset();
        }
    }

    /// Replaces the card (e.g. a blank card for issuing), leaving it in the hand.
    pub fn swap_card(&self, card: Card) -> Option<Card> {
        let mut g = self.lock();
        let old = g.transport.remove_card().or_else(|| g.hand.take());
        g.hand = Some(card);
        old
    }
}

/// The card reader the app uses.
#[derive(Clone)]
pub enum CardSource {
    /// The in-process simulated card.
    Sim(SimSlot),
    /// A PC/SC reader, by name.
    Pcsc { reader: String },
}

impl std::fmt::Debug for CardSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardSource::Sim(_) => f.write_str("CardSource::Sim"),
            CardSource::Pcsc { reader } => write!(f, "CardSource::Pcsc({reader:?})"),
        }
    }
}

impl CardSource {
    /// The reader's name as shown to people.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            CardSource::Sim(_) => reader::transport::SIM_READER.to_owned(),
            CardSource::Pcsc { reader } => reader.clone(),
        }
    }

    /// Runs `f` on the card: in-process directly, over PC/SC in one transaction, then the card is
    /// reset so no PIN status lingers.
    ///
    /// # Errors
    /// No reader, no card, or `f`'s error.
    pub fn with_card<R, E: From<PivError>>(&self, f: impl FnOnce(&mut Piv<&mut dyn Transport>) -> Result<R, E>) -> Result<R, E> {
        match self {
            CardSource::Sim(slot) => {
                let mut g = slot.lock();
                let t: &mut dyn Transport = &mut g.transport;
                let mut piv = Piv::new(t);
                let r = f(&mut piv);
                let _ = piv.transport_mut().reset();
                r
            }
            CardSource::Pcsc { reader } => {
                let ctx = PcscContext::establish().map_err(PivError::from)?;
                let mut transport = ctx.connect(reader).map_err(PivError::from)?;
                let r = transport
                    .transaction(|tx| {
                        let t: &mut dyn Transport = tx;
                        let mut piv = Piv::new(t);
                        f(&mut piv)
                    })
                    .map_err(PivError::from)?;
                let _ = transport.disconnect();
                r
            }
        }
    }
}

/// Follows card insertion and removal: the simulator is asked directly each frame; a PC/SC
/// reader is watched by a thread (blocking `SCardGetStatusChange`) that wakes the UI.
pub struct CardWatch {
    source: CardSource,
    events: Option<Receiver<Presence>>,
    last: Presence,
}

impl CardWatch {
    /// Starts watching; `wake` is called from the watcher thread on every change.
    #[must_use]
    pub fn new(source: CardSource, wake: impl Fn() + Send + 'static) -> Self {
        let events = match &source {
            CardSource::Sim(_) => None,
            CardSource::Pcsc { reader } => {
                let (tx, rx) = mpsc::channel();
                let reader = reader.clone();
                let spawned = std::thread::Builder::new().name("card-watch".into()).spawn(move || {
                    watch_pcsc(&reader, |p| {
                        let ok = tx.send(p).is_ok();
                        wake();
                        ok
                    });
                });
                match spawned {
                    Ok(_) => Some(rx),
                    Err(_) => None,
                }
            }
        };
        let last = match &source {
            CardSource::Sim(_) => Presence::Empty,
            CardSource::Pcsc { .. } => Presence::NoReader("looking for the card reader…".into()),
        };
        CardWatch { source, events, last }
    }

    /// The source being watched.
    #[must_use]
    pub fn source(&self) -> &CardSource {
        &self.source
    }

    /// The current presence (call once per frame).
    pub fn poll(&mut self) -> Presence {
        match &self.source {
            CardSource::Sim(slot) => {
                self.last = if slot.inserted() { Presence::Card } else { Presence::Empty };
            }
            CardSource::Pcsc { .. } => {
                if let Some(rx) = &self.events {
                    while let Ok(p) = rx.try_recv() {
                        self.last = p;
                    }
                } else {
                    self.last = Presence::NoReader("could not start watching the card reader".into());
                }
            }
        }
        self.last.clone()
    }
}

/// The watcher loop: reports the presence whenever it changes, retries when pcscd or the reader
/// goes away, until `report` says the UI is gone.
fn watch_pcsc(reader: &str, mut report: impl FnMut(Presence) -> bool) {
    let mut last: Option<Presence> = None;
    let mut send = |p: Presence, last: &mut Option<Presence>| -> bool {
        if last.as_ref() == Some(&p) {
            return true;
        }
        *last = Some(p.clone());
        report(p)
    };
    loop {
        let ctx = match PcscContext::establish() {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("the smart-card service is not running ({e}): ask IT to start pcscd");
                if !send(Presence::NoReader(msg), &mut last) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            let present = match ctx.card_present(reader) {
                Ok(true) => Presence::Card,
                Ok(false) => Presence::Empty,
                Err(_) => Presence::NoReader(format!("card reader {reader:?} is not connected: plug it in")),
            };
            let gone = matches!(present, Presence::NoReader(_));
            if !send(present, &mut last) {
                return;
            }
            if gone {
                std::thread::sleep(Duration::from_secs(1));
                break;
            }
            match ctx.wait_for_change(reader, Duration::from_millis(500)) {
                Ok(CardEvent::Inserted | CardEvent::Removed) | Err(TransportError::Timeout(_)) => {}
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
            }
        }
    }
}
