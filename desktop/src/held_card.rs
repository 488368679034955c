//! A staff card held connected for a whole staff session. The session's PIN is verified once,
//! at sign-in, and the card's PIN-gated 9A key signs every access entry after it: that needs the
//! same card session, so the card must not be reset (as [`CardSource::with_card`] does after each
//! piece of work) until the session ends.
//!
//! One thread per held card owns the connection and runs the work sent to it, one piece at a
//! time: over PC/SC inside one transaction for the whole session (as `medcard --staff-reader`
//! does), in process on the simulator without a reset between pieces. When the last
//! [`HeldCard`] is dropped the thread resets the card (no PIN status lingers) and ends.
//! [`HeldCard::run`] blocks until the work is done: call it from a worker thread, never the UI.

use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use reader::audit::Event;
use reader::staff_card::{EntrySigner, StaffSession};
use reader::{PcscContext, Piv, PivError, Transport, TransportError};

use crate::card_source::CardSource;

/// The longest a piece of card work may take before the card counts as gone.
const WORK_TIMEOUT: Duration = Duration::from_secs(30);

type Work = Box<dyn FnOnce(&mut Piv<&mut dyn Transport>) + Send>;

/// A card kept connected (cheap to clone: every clone talks to the same thread).
#[derive(Clone)]
pub struct HeldCard {
    tx: Sender<Work>,
    reader: String,
}

impl std::fmt::Debug for HeldCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldCard({:?})", self.reader)
    }
}

fn gone(reader: &str) -> reader::Error {
    reader::Error::Card(PivError::Transport(TransportError::CardRemoved { reader: reader.to_owned() }))
}

impl HeldCard {
    /// Connects to the card in `source` and starts the thread that holds it. Blocks until the
    /// connection is made (call it from a worker thread).
    ///
    /// # Errors
    /// No card, no reader, no smart-card service, or no thread.
    pub fn open(source: &CardSource) -> Result<HeldCard, reader::Error> {
        let reader = source.name();
        let (tx, rx) = mpsc::channel::<Work>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), TransportError>>();
        let name = reader.clone();
        let spawned = match source.clone() {
            CardSource::Sim(slot) => std::thread::Builder::new().name("staff-card".into()).spawn(move || {
                let ready = if slot.inserted() { Ok(()) } else { Err(TransportError::NoCard { reader: name }) };
                let ok = ready.is_ok();
                let _ = ready_tx.send(ready);
                if ok {
                    while let Ok(work) = rx.recv() {
                        slot.with_card_kept(work);
                    }
                    slot.reset_card();
                }
            }),
            CardSource::Pcsc { reader } => std::thread::Builder::new().name("staff-card".into()).spawn(move || {
                let connected = PcscContext::establish().and_then(|ctx| ctx.connect(&reader).map(|t| (ctx, t)));
                let (_ctx, mut transport) = match connected {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // One transaction for the session: no other application can reset the card or
                // select another applet between the sign-in and the signatures.
                let held = transport.transaction(|t| {
                    let _ = ready_tx.send(Ok(()));
                    let t: &mut dyn Transport = t;
                    let mut piv = Piv::new(t);
                    while let Ok(work) = rx.recv() {
                        work(&mut piv);
                    }
                });
                if let Err(e) = held {
                    let _ = ready_tx.send(Err(e));
                }
                let _ = transport.disconnect();
            }),
        };
        spawned.map_err(|_| gone(&reader))?;
        match ready_rx.recv_timeout(WORK_TIMEOUT) {
            Ok(Ok(())) => Ok(HeldCard { tx, reader }),
            Ok(Err(e)) => Err(reader::Error::Card(PivError::Transport(e))),
            // The thread waits for exclusive access: another session or application holds the card.
            Err(mpsc::RecvTimeoutError::Timeout) => Err(reader::Error::Card(PivError::Transport(TransportError::Sharing { reader }))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone(&reader)),
        }
    }

    /// The reader's name.
    #[must_use]
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Runs `f` on the held card and returns its result. Blocks (worker threads only).
    ///
    /// # Errors
    /// `f`'s error, or "card removed" when the thread is gone or the card did not answer in time.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Piv<&mut dyn Transport>) -> Result<R, reader::Error> + Send + 'static,
    ) -> Result<R, reader::Error> {
        let (reply, answer) = mpsc::channel();
        let work: Work = Box::new(move |piv| {
            let _ = reply.send(f(piv));
        });
        self.tx.send(work).map_err(|_| gone(&self.reader))?;
        answer.recv_timeout(WORK_TIMEOUT).map_err(|_| gone(&self.reader))?
    }
}

/// A signed-in member of staff and their held card: signs audit entries in their name
/// ([`reader::bedside::Reader::Staff`], [`reader::emergency::open`]).
#[derive(Debug, Clone)]
pub struct CardSigner {
    /// The session.
    pub session: StaffSession,
    /// The card it was opened on.
    pub card: HeldCard,
}

impl EntrySigner for CardSigner {
    fn session(&self) -> &StaffSession {
        &self.session
    }

    fn sign(&mut self, event: &mut Event) -> Result<(), reader::Error> {
        let session = self.session.clone();
        let mut ev = event.clone();
        *event = self.card.run(move |piv| session.sign_event(piv, &mut ev).map(|()| ev))?;
        Ok(())
    }
}
