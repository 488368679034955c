//! The PIV applet: `Card::process(apdu) -> response`. Owner: applet helper.
//!
//! Flow of one APDU: split (ISO/IEC 7816-4 §5.1; `6700`) → CLA (`6E00`) → GET RESPONSE paging
//! → command chaining (CLA 10, §5.1.1.1) → typed [`Command`] (its error is the status word)
//! → one handler per command. A handler that changes persistent state builds the new state,
//! saves it through [`Persist`] and only then adopts it (`6581` and no change if the save fails).

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::command::{self, Authenticate, CLA_CHAIN, Command, MgmtStep, PinRef, Verify, ins};
use crate::crypto;
use crate::key_ref::{KeySlot, MgmtAlgorithm};
use crate::objects;
use crate::pin::PinBlock;
use crate::reply::{StatusWord, response};
use crate::state::{Blob, MAX_TRIES, ManagementKey, Persist, PersistentState, Secret, SlotKey};
use crate::tlv;

/// The Answer-To-Reset: T=1 only (TD1 = 81, TD2 = 31: IFSC FE, BWI/CWI 15), historical bytes
/// `80 73 C0 21 C0 57 "MedCard"` (category 80, card capabilities, issuer data), then TCK.
pub const ATR: [u8; 23] = atr_with_tck([
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, b'M', b'e', b'd', b'C', b'a', b'r', b'd',
    0x00,
]);

/// Fill in TCK: the XOR of all bytes from T0 to the last historical byte (ISO/IEC 7816-3 §8.2.5).
// Evaluated at compile time over a fixed-size array: an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn atr_with_tck(mut atr: [u8; 23]) -> [u8; 23] {
    let mut x = 0u8;
    let mut i = 1;
    while i < 22 {
        x ^= atr[i];
        i += 1;
    }
    atr[22] = x;
    atr
}

/// Yubico GET VERSION answer: the YubiKey firmware level whose PIV behaviour this mimics.
pub const VERSION: [u8; 3] = [5, 4, 3];

/// Largest reassembled command data of a chain (CLA 10 blocks plus the final block), bytes.
/// Big enough for a [`objects::MAX_OBJECT_LEN`] object with its 5C/53 framing.
pub const MAX_CHAIN_LEN: usize = objects::MAX_OBJECT_LEN + 64;

/// A pending management-key handshake (consumed by the next GENERAL AUTHENTICATE 9B).
struct MgmtPending {
    algorithm: MgmtAlgorithm,
    /// The witness plaintext W (mutual) or the challenge C (external) the host must prove.
    expected: Zeroizing<Vec<u8>>,
    mutual: bool,
}

/// Command chaining in progress: header of the chain and the data so far.
struct Chain {
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
}

/// Security status and buffers; cleared by power off and reset.
#[derive(Default)]
struct Volatile {
    /// The PIN was verified in this session (9A, 9D).
    pin_verified: bool,
    /// A successful VERIFY since the last 9C signature ("PIN always", consumed by one 9C use).
    pin_always_armed: bool,
    /// The 9B management key was authenticated in this session.
    mgmt_authenticated: bool,
    mgmt_pending: Option<MgmtPending>,
    chain: Option<Chain>,
    /// Response bytes not yet fetched by GET RESPONSE.
    pending: Option<Vec<u8>>,
}

/// A simulated card: persistent state, volatile security status, and where to save.
pub struct Card {
    state: PersistentState,
    store: Box<dyn Persist + Send>,
    volatile: Volatile,
}

impl Card {
    /// A card over `state`, saving to `store`.
    pub fn new(state: PersistentState, store: Box<dyn Persist + Send>) -> Self {
        Self { state, store, volatile: Volatile::default() }
    }

    /// The Answer-To-Reset.
    pub fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }

    /// Process one command APDU (short or extended encoding, as received) and return the
    /// response APDU: data followed by SW1 SW2. Never panics, whatever the bytes.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let apdu = match command::parse_apdu(apdu) {
            Ok(a) => a,
            Err(sw) => return self.fail(sw),
        };
        // CLA: 00, or 10 for a non-final block of a chain. Secure messaging and logical
        // channels are not supported.
        if apdu.cla & !CLA_CHAIN != 0 {
            return self.fail(StatusWord::ClaNotSupported);
        }
        if apdu.ins == ins::GET_RESPONSE {
            return self.get_response(apdu.cla, apdu.p1, apdu.p2, apdu.data, apdu.ne);
        }
        // An unknown instruction is refused at once, even as a chained block (nothing collected).
        if !ins::is_supported(apdu.ins) {
            return self.fail(StatusWord::InsNotSupported);
        }
        self.volatile.pending = None;
        // A management-key handshake must continue with the very next command.
        let mgmt_pending = self.volatile.mgmt_pending.take();

        // Command chaining: non-final blocks are collected (9000 each); a block with another
        // header discards the chain in progress.
        let chain = self.volatile.chain.take();
        let chain = chain.filter(|c| c.ins == apdu.ins && c.p1 == apdu.p1 && c.p2 == apdu.p2).map(|c| c.data);
        let data_len = chain.as_ref().map_or(0, Vec::len).saturating_add(apdu.data.len());
        if data_len > MAX_CHAIN_LEN {
            return self.fail(StatusWord::NotEnoughMemory);
        }
        let mut data = chain.unwrap_or_default();
        data.extend_from_slice(apdu.data);
        if apdu.cla & CLA_CHAIN != 0 {
            self.volatile.chain = Some(Chain { ins: apdu.ins, p1: apdu.p1, p2: apdu.p2, data });
            self.volatile.mgmt_pending = mgmt_pending;
            return response(Vec::new(), StatusWord::Success);
        }

        let result = Command::parse(apdu.ins, apdu.p1, apdu.p2, &data).and_then(|cmd| self.handle(cmd, mgmt_pending));
        match result {
            Ok(out) => self.deliver(out, apdu.ne),
            Err(sw) => response(Vec::new(), sw),
        }
    }

    /// Power off: clears the security status (PIN verified, management key authenticated),
    /// chaining and pending responses.
    pub fn power_off(&mut self) {
        self.volatile = Volatile::default();
    }

    /// Warm reset: same effect on the security status as power off.
    pub fn reset(&mut self) {
        self.volatile = Volatile::default();
    }

    /// The persistent state (for tests and for saving).
    pub fn state(&self) -> &PersistentState {
        &self.state
    }

    /// Whether the PIN has been verified in this session (for tests and logs).
    pub fn pin_verified(&self) -> bool {
        self.volatile.pin_verified
    }

    /// Whether the management key has been authenticated in this session.
    pub fn management_authenticated(&self) -> bool {
        self.volatile.mgmt_authenticated
    }

    fn fail(&mut self, sw: StatusWord) -> Vec<u8> {
        // A malformed APDU ends any chain or paging in progress.
        self.volatile.chain = None;
        self.volatile.pending = None;
        self.volatile.mgmt_pending = None;
        response(Vec::new(), sw)
    }

    /// Send at most `ne` bytes now; keep the rest for GET RESPONSE and say how much (61xx).
    fn deliver(&mut self, mut data: Vec<u8>, ne: usize) -> Vec<u8> {
        if data.len() <= ne {
            return response(data, StatusWord::Success);
        }
        let rest = data.split_off(ne);
        let announce = u8::try_from(rest.len()).unwrap_or(0); // 00 = 256 or more
        self.volatile.pending = Some(rest);
        response(data, StatusWord::BytesRemaining(announce))
    }

    /// GET RESPONSE (ISO/IEC 7816-4 §7.6.1): the next part of a long response.
    fn get_response(&mut self, cla: u8, p1: u8, p2: u8, data: &[u8], ne: usize) -> Vec<u8> {
        if cla != 0 {
            return self.fail(StatusWord::ClaNotSupported);
        }
        if (p1, p2) != (0, 0) {
            return self.fail(StatusWord::IncorrectP1P2);
        }
        if !data.is_empty() {
            return self.fail(StatusWord::WrongLength);
        }
        match self.volatile.pending.take() {
            Some(rest) => self.deliver(rest, ne),
            None => self.fail(StatusWord::ConditionsNotSatisfied),
        }
    }

    /// Save `next`, then adopt it. If the save fails nothing changes and the answer is 6581.
    fn commit(&mut self, next: PersistentState) -> Result<(), StatusWord> {
        if self.store.save(&next).is_err() {
            return Err(StatusWord::MemoryFailure);
        }
        self.state = next;
        Ok(())
    }

    fn handle(&mut self, cmd: Command, mgmt_pending: Option<MgmtPending>) -> Result<Vec<u8>, StatusWord> {
        match cmd {
            Command::Select => Ok(objects::application_property_template()),
            Command::GetVersion => Ok(VERSION.to_vec()),
            Command::GetSerial => Ok(self.state.serial.to_be_bytes().to_vec()),
            Command::GetData { tag } => self.get_data(tag),
            Command::PutData { tag, content } => self.put_data(tag, content),
            Command::Verify(v) => self.verify(v),
            Command::ChangeReference { which, old, new } => self.change_reference(which, &old, &new),
            Command::ResetRetryCounter { puk, new_pin } => self.reset_retry_counter(&puk, &new_pin),
            Command::Generate { slot, pin_policy, touch_policy } => self.generate(slot, pin_policy, touch_policy),
            Command::Authenticate(Authenticate::Management { algorithm, step }) => {
                self.authenticate_management(algorithm, step, mgmt_pending)
            }
            Command::Authenticate(Authenticate::Sign { slot, digest }) => self.sign(slot, &digest),
            Command::Authenticate(Authenticate::Ecdh { slot, peer }) => self.ecdh(slot, &peer),
            Command::SetManagementKey { algorithm, key, touch_required } => self.set_management_key(algorithm, key, touch_required),
        }
    }

    /// GET DATA (Part 2 §3.1.2). The discovery object is built in; stored objects come back
    /// in their 53 container.
    fn get_data(&self, tag: u32) -> Result<Vec<u8>, StatusWord> {
        if tag == objects::DISCOVERY {
            return Ok(objects::discovery());
        }
        match self.state.objects.get(&tag) {
            Some(Blob(content)) => Ok(tlv::encode(0x53, content)),
            None => Err(StatusWord::NotFound),
        }
    }

    /// PUT DATA (Part 2 §3.3.1), after management-key authentication. An empty 53 deletes
    /// the object (as YubiKey does).
    fn put_data(&mut self, tag: u32, content: Vec<u8>) -> Result<Vec<u8>, StatusWord> {
        self.require_management()?;
        let mut next = self.state.clone();
        if content.is_empty() {
            next.objects.remove(&tag);
        } else {
            next.objects.insert(tag, Blob(content));
        }
        self.commit(next)?;
        Ok(Vec::new())
    }

    fn require_management(&self) -> Result<(), StatusWord> {
        if self.volatile.mgmt_authenticated { Ok(()) } else { Err(StatusWord::SecurityStatusNotSatisfied) }
    }

    fn clear_pin_status(&mut self) {
        self.volatile.pin_verified = false;
        self.volatile.pin_always_armed = false;
    }

    /// The counter rule for PIN and PUK (Part 2 §3.2.1–3.2.3): blocked → 6983; else the try
    /// counter is decremented and **saved before** the comparison; a wrong value answers 63Cx
    /// with the tries left. On a match the caller saves the counter back at 3 together with
    /// any new reference data.
    fn spend_try(&mut self, which: PinRef, presented: &PinBlock) -> Result<(), StatusWord> {
        let record = match which {
            PinRef::Pin => &self.state.pin,
            PinRef::Puk => &self.state.puk,
        };
        let left = record.tries_left.min(MAX_TRIES);
        if left == 0 {
            return Err(StatusWord::AuthBlocked);
        }
        let mut next = self.state.clone();
        let after = left - 1;
        match which {
            PinRef::Pin => next.pin.tries_left = after,
            PinRef::Puk => next.puk.tries_left = after,
        }
        if let Err(sw) = self.commit(next) {
            // The save failed, possibly after the file was already replaced (a failed directory
            // fsync): the disk may hold `after`. Never keep more tries in memory than the disk
            // may hold, so a failing store cannot be used to gain tries; and do not compare.
            match which {
                PinRef::Pin => {
                    self.state.pin.tries_left = after;
                    self.clear_pin_status();
                }
                PinRef::Puk => self.state.puk.tries_left = after,
            }
            return Err(sw);
        }
        let record = match which {
            PinRef::Pin => &self.state.pin,
            PinRef::Puk => &self.state.puk,
        };
        if presented.matches(record.value.expose()) {
            Ok(())
        } else {
            if which == PinRef::Pin {
                self.clear_pin_status();
            }
            Err(StatusWord::VerifyFailed { tries_left: after })
        }
    }

    /// VERIFY (Part 2 §3.2.1).
    fn verify(&mut self, v: Verify) -> Result<Vec<u8>, StatusWord> {
        match v {
            Verify::Logout => {
                self.clear_pin_status();
                Ok(Vec::new())
            }
            Verify::Status => {
                let left = self.state.pin.tries_left;
                if left == 0 {
                    Err(StatusWord::AuthBlocked)
                } else if self.volatile.pin_verified {
                    Ok(Vec::new())
                } else {
                    Err(StatusWord::VerifyFailed { tries_left: left })
                }
            }
            Verify::Check(pin) => {
                self.spend_try(PinRef::Pin, &pin)?;
                let mut next = self.state.clone();
                next.pin.tries_left = MAX_TRIES;
                self.commit(next)?;
                self.volatile.pin_verified = true;
                self.volatile.pin_always_armed = true;
                Ok(Vec::new())
            }
        }
    }

    /// CHANGE REFERENCE DATA (Part 2 §3.2.2): old || new for the PIN (80) or PUK (81).
    fn change_reference(&mut self, which: PinRef, old: &PinBlock, new: &PinBlock) -> Result<Vec<u8>, StatusWord> {
        self.spend_try(which, old)?;
        let mut next = self.state.clone();
        let record = match which {
            PinRef::Pin => &mut next.pin,
            PinRef::Puk => &mut next.puk,
        };
        record.value = Secret::new(new.as_bytes().to_vec());
        record.tries_left = MAX_TRIES;
        self.commit(next)?;
        Ok(Vec::new())
    }

    /// RESET RETRY COUNTER (Part 2 §3.2.3): PUK || new PIN; the PIN counter goes back to 3.
    fn reset_retry_counter(&mut self, puk: &PinBlock, new_pin: &PinBlock) -> Result<Vec<u8>, StatusWord> {
        self.spend_try(PinRef::Puk, puk)?;
        let mut next = self.state.clone();
        next.puk.tries_left = MAX_TRIES;
        next.pin.value = Secret::new(new_pin.as_bytes().to_vec());
        next.pin.tries_left = MAX_TRIES;
        self.commit(next)?;
        self.clear_pin_status();
        Ok(Vec::new())
    }

    /// GENERATE ASYMMETRIC KEY PAIR (Part 2 §3.3.2): P-256 only; returns 7F49 { 86 point }.
    fn generate(&mut self, slot: KeySlot, pin_policy: Option<u8>, touch_policy: Option<u8>) -> Result<Vec<u8>, StatusWord> {
        self.require_management()?;
        let (private, public) = crypto::generate_p256()?;
        let mut next = self.state.clone();
        next.keys.insert(slot, SlotKey { private, pin_policy, touch_policy });
        self.commit(next)?;
        Ok(tlv::encode(0x7F49, &tlv::encode(0x86, &public)))
    }

    fn slot_key(&self, slot: KeySlot) -> Result<&SlotKey, StatusWord> {
        self.state.keys.get(&slot).ok_or(StatusWord::ReferenceNotFound)
    }

    /// GENERAL AUTHENTICATE, ECDSA (Part 2 §3.2.4, App. A.4): 9A PIN once, 9C PIN before
    /// every signature, 9E no PIN. 9D is a key-management key: ECDH only.
    fn sign(&mut self, slot: KeySlot, digest: &[u8; 32]) -> Result<Vec<u8>, StatusWord> {
        let key = self.slot_key(slot)?;
        match slot {
            KeySlot::CardAuth => {}
            KeySlot::PivAuth if self.volatile.pin_verified => {}
            KeySlot::Signature if self.volatile.pin_verified && self.volatile.pin_always_armed => {}
            KeySlot::KeyManagement => return Err(StatusWord::IncorrectData),
            _ => return Err(StatusWord::SecurityStatusNotSatisfied),
        }
        let der = crypto::sign_digest(key.private.expose(), digest)?;
        if slot == KeySlot::Signature {
            self.volatile.pin_always_armed = false;
        }
        Ok(tlv::encode(0x7C, &tlv::encode(0x82, &der)))
    }

    /// GENERAL AUTHENTICATE, ECDH with 9D (Part 2 App. A.5): returns the shared X coordinate.
    fn ecdh(&mut self, slot: KeySlot, peer: &[u8]) -> Result<Vec<u8>, StatusWord> {
        let key = self.slot_key(slot)?;
        if slot != KeySlot::KeyManagement {
            return Err(StatusWord::IncorrectData);
        }
        if !self.volatile.pin_verified {
            return Err(StatusWord::SecurityStatusNotSatisfied);
        }
        let shared = crypto::ecdh(key.private.expose(), peer)?;
        Ok(tlv::encode(0x7C, &tlv::encode(0x82, &shared)))
    }

    /// GENERAL AUTHENTICATE with 9B (Part 2 App. A.1 mutual, A.2 external authentication).
    fn authenticate_management(
        &mut self,
        algorithm: MgmtAlgorithm,
        step: MgmtStep,
        pending: Option<MgmtPending>,
    ) -> Result<Vec<u8>, StatusWord> {
        let mk = &self.state.management_key;
        if algorithm != mk.algorithm {
            return Err(StatusWord::IncorrectP1P2);
        }
        let key = Zeroizing::new(mk.key.expose().to_vec());
        let block = algorithm.block_len();
        match step {
            MgmtStep::RequestWitness | MgmtStep::RequestChallenge => {
                let mutual = matches!(step, MgmtStep::RequestWitness);
                self.volatile.mgmt_authenticated = false;
                let plain = crypto::random(block)?;
                let out = if mutual {
                    let witness = crypto::mgmt_block(algorithm, &key, &plain, true)?;
                    tlv::encode(0x7C, &tlv::encode(0x80, &witness))
                } else {
                    tlv::encode(0x7C, &tlv::encode(0x81, &plain))
                };
                self.volatile.mgmt_pending = Some(MgmtPending { algorithm, expected: plain, mutual });
                Ok(out)
            }
            MgmtStep::MutualResponse { witness, challenge } => {
                let p = pending.filter(|p| p.mutual && p.algorithm == algorithm);
                let p = p.ok_or(StatusWord::ConditionsNotSatisfied)?;
                if witness.len() != block || challenge.len() != block {
                    return Err(StatusWord::IncorrectData);
                }
                if !bool::from(witness.as_slice().ct_eq(p.expected.as_slice())) {
                    return Err(StatusWord::SecurityStatusNotSatisfied);
                }
                let answer = crypto::mgmt_block(algorithm, &key, &challenge, true)?;
                self.volatile.mgmt_authenticated = true;
                Ok(tlv::encode(0x7C, &tlv::encode(0x82, &answer)))
            }
            MgmtStep::ExternalResponse { response } => {
                let p = pending.filter(|p| !p.mutual && p.algorithm == algorithm);
                let p = p.ok_or(StatusWord::ConditionsNotSatisfied)?;
                if response.len() != block {
                    return Err(StatusWord::IncorrectData);
                }
                let expected = crypto::mgmt_block(algorithm, &key, &p.expected, true)?;
                if !bool::from(response.as_slice().ct_eq(expected.as_slice())) {
                    return Err(StatusWord::SecurityStatusNotSatisfied);
                }
                self.volatile.mgmt_authenticated = true;
                Ok(Vec::new())
            }
        }
    }

    /// Yubico SET MANAGEMENT KEY (INS FF), after management-key authentication.
    fn set_management_key(
        &mut self,
        algorithm: MgmtAlgorithm,
        key: Zeroizing<Vec<u8>>,
        touch_required: bool,
    ) -> Result<Vec<u8>, StatusWord> {
        self.require_management()?;
        let mut next = self.state.clone();
        next.management_key = ManagementKey { algorithm, key: Secret::new(key.to_vec()), touch_required };
        self.commit(next)?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_checksum_makes_the_xor_of_t0_to_tck_zero() {
        let x = ATR.iter().skip(1).fold(0u8, |a, b| a ^ b);
        assert_eq!(x, 0);
        assert_eq!(ATR.first(), Some(&0x3B));
    }
}
