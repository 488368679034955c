//! The card's cryptography: management-key block cipher (3DES / AES, SP 800-78-4 §3), P-256
//! key generation, ECDSA over a host digest and ECDH (SP 800-73-4 Part 2 §3.2.4, App. A.4/A.5).

use cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::key_ref::MgmtAlgorithm;
use crate::reply::StatusWord;
use crate::state::Secret;

/// `n` random bytes from the operating system; `6F00` if it fails.
pub fn random(n: usize) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf).map_err(|_| StatusWord::Unknown)?;
    Ok(buf)
}

fn ecb<C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt>(key: &[u8], block: &[u8], encrypt: bool) -> Option<Zeroizing<Vec<u8>>> {
    let c = C::new_from_slice(key).ok()?;
    let mut b = cipher::Block::<C>::try_from(block).ok()?;
    if encrypt {
        c.encrypt_block(&mut b);
    } else {
        c.decrypt_block(&mut b);
    }
    Some(Zeroizing::new(b.to_vec()))
}

/// One ECB block operation with the management key; `6A80` if the block length does not
/// match the algorithm's block size.
pub fn mgmt_block(algorithm: MgmtAlgorithm, key: &[u8], block: &[u8], encrypt: bool) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
    let out = match algorithm {
        MgmtAlgorithm::Tdes => ecb::<des::TdesEde3>(key, block, encrypt),
        MgmtAlgorithm::Aes128 => ecb::<aes::Aes128>(key, block, encrypt),
        MgmtAlgorithm::Aes192 => ecb::<aes::Aes192>(key, block, encrypt),
        MgmtAlgorithm::Aes256 => ecb::<aes::Aes256>(key, block, encrypt),
    };
    out.ok_or(StatusWord::IncorrectData)
}

/// A fresh P-256 key: the private scalar (32 bytes) and the uncompressed public point
/// `04 || X || Y` (65 bytes).
pub fn generate_p256() -> Result<(Secret, Vec<u8>), StatusWord> {
    // Rejection sampling: a random 32-byte string is a valid scalar with overwhelming
    // probability; retry a few times for the others (zero or >= n).
    for _ in 0..8 {
        let candidate = random(32)?;
        if let Ok(sk) = SigningKey::from_slice(&candidate) {
            let public = public_point(&sk);
            return Ok((Secret::new(sk.to_bytes().to_vec()), public));
        }
    }
    Err(StatusWord::Unknown)
}

fn public_point(sk: &SigningKey) -> Vec<u8> {
    VerifyingKey::from(sk).to_sec1_point(false).as_bytes().to_vec()
}

/// The uncompressed public point of a stored private key.
pub fn public_of(private: &[u8]) -> Result<Vec<u8>, StatusWord> {
    let sk = SigningKey::from_slice(private).map_err(|_| StatusWord::Unknown)?;
    Ok(public_point(&sk))
}

/// The digest as P-256 ECDSA uses it: FIPS 186-4 §6.4 takes the leftmost 256 bits of a longer
/// hash; a shorter value is left-padded with zeros (its integer value is kept).
pub fn normalize_digest(digest: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if digest.len() >= 32 {
        for (o, d) in out.iter_mut().zip(digest) {
            *o = *d;
        }
    } else {
        let pad = 32 - digest.len();
        for (o, d) in out.iter_mut().skip(pad).zip(digest) {
            *o = *d;
        }
    }
    out
}

/// ECDSA P-256 over a 32-byte digest; the DER signature (SEQUENCE { r, s }).
pub fn sign_digest(private: &[u8], digest: &[u8; 32]) -> Result<Vec<u8>, StatusWord> {
    let sk = SigningKey::from_slice(private).map_err(|_| StatusWord::Unknown)?;
    let sig: Signature = sk.sign_prehash(digest).map_err(|_| StatusWord::Unknown)?;
    Ok(sig.to_der().as_bytes().to_vec())
}

/// ECDH P-256 (SP 800-56A Ephemeral Unified / C(1e,1s) card side): the X coordinate of
/// `private * peer`. `6A80` if the peer point is not a valid uncompressed P-256 point.
pub fn ecdh(private: &[u8], peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
    if peer.len() != 65 || peer.first() != Some(&0x04) {
        return Err(StatusWord::IncorrectData);
    }
    let public = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| StatusWord::IncorrectData)?;
    let sk = p256::SecretKey::from_slice(private).map_err(|_| StatusWord::Unknown)?;
    let shared = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), public.as_affine());
    Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_left_padded_or_truncated_to_32_bytes() {
        let short = normalize_digest(&[1, 2]);
        assert_eq!(short.get(30..), Some(&[1u8, 2][..]));
        assert!(short.get(..30).is_some_and(|z| z.iter().all(|b| *b == 0)));
        let long: Vec<u8> = (0..48).collect();
        assert_eq!(&normalize_digest(&long)[..], long.get(..32).unwrap_or_default());
    }

    #[test]
    fn management_block_refuses_wrong_block_length() {
        let key = [0u8; 16];
        assert_eq!(mgmt_block(MgmtAlgorithm::Aes128, &key, &[0; 8], true).err(), Some(StatusWord::IncorrectData));
        let enc = mgmt_block(MgmtAlgorithm::Aes128, &key, &[7; 16], true);
        let Ok(enc) = enc else { panic!("encrypt failed") };
        assert_eq!(mgmt_block(MgmtAlgorithm::Aes128, &key, &enc, false).map(|d| d.to_vec()), Ok(vec![7; 16]));
    }

    #[test]
    fn ecdh_refuses_points_off_the_curve() {
        let Ok((sk, _)) = generate_p256() else { panic!("keygen failed") };
        let mut bogus = vec![0x04];
        bogus.extend([1u8; 64]);
        assert_eq!(ecdh(sk.expose(), &bogus).err(), Some(StatusWord::IncorrectData));
    }
}
