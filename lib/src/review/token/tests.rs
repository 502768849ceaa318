use proptest::prelude::*;

use super::*;

const NOW: i64 = 1_764_990_000;
const IN_72_H: i64 = NOW + 72 * 3600;

fn key() -> ReviewKey {
    ReviewKey::new(*b"0123456789abcdef0123456789abcdef").unwrap()
}

fn claims() -> Claims {
    Claims::new("3fa9c21e", Take::Hubspot, "ana@example.com", IN_72_H).unwrap()
}

/// The token with its decoded bytes changed by `f`, spelled again.
fn with_bytes(token: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = B64.decode(token).unwrap();
    f(&mut bytes);
    B64.encode(bytes)
}

#[test]
fn a_signed_token_verifies_to_its_claims() {
    let token = sign(&key(), &claims());
    let got = verify(&key(), &token, NOW).unwrap();
    assert_eq!(got, claims());
    assert_eq!(got.conflict_id(), "3fa9c21e");
    assert_eq!(got.take(), Take::Hubspot);
    assert_eq!(got.recipient(), "ana@example.com");
    assert_eq!(got.expires_at(), IN_72_H);
    // One path segment as it stands, and the same every time.
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token}"
    );
    assert_eq!(token, sign(&key(), &claims()));
}

#[test]
fn any_changed_byte_is_tampered() {
    let token = sign(&key(), &claims());
    let len = B64.decode(&token).unwrap().len();
    for i in 0..len {
        for bit in [0x01, 0x80] {
            let changed = with_bytes(&token, |b| b[i] ^= bit);
            assert_eq!(
                verify(&key(), &changed, NOW),
                Err(TokenError::Tampered),
                "byte {i} ^ {bit:#x}"
            );
        }
    }
    // A byte added or taken away at the end moves the MAC: tampered too.
    let longer = with_bytes(&token, |b| b.push(0));
    assert_eq!(verify(&key(), &longer, NOW), Err(TokenError::Tampered));
    let shorter = with_bytes(&token, |b| {
        b.pop();
    });
    assert_eq!(verify(&key(), &shorter, NOW), Err(TokenError::Tampered));
}

/// Each claim changed under the original MAC: the choice (the link that
/// keeps WARP's value made to take HubSpot's), the conflict, the expiry
/// (a link made to last longer) and the recipient.
#[test]
fn any_changed_claim_is_tampered() {
    let original = sign(&key(), &claims());
    let bytes = B64.decode(&original).unwrap();
    let mac = &bytes[bytes.len() - MAC_LEN..];
    let others = [
        Claims::new("3fa9c21e", Take::Warp, "ana@example.com", IN_72_H),
        Claims::new("3fa9c21f", Take::Hubspot, "ana@example.com", IN_72_H),
        Claims::new("3fa9c21e", Take::Hubspot, "ana@example.com", IN_72_H + 1),
        Claims::new("3fa9c21e", Take::Hubspot, "ben@example.com", IN_72_H),
    ];
    for other in others {
        let other = other.unwrap();
        let mut forged = other.encode();
        forged.extend_from_slice(mac);
        assert_eq!(
            verify(&key(), &B64.encode(forged), NOW),
            Err(TokenError::Tampered),
            "{other:?} under the original MAC"
        );
    }
}

#[test]
fn the_recipient_is_bound() {
    let for_ana = sign(&key(), &claims());
    let ana = verify(&key(), &for_ana, NOW).unwrap();
    assert_ne!(ana.recipient(), "ben@example.com");
    // Ben's address put in Ana's token, lengths and all, keeps Ana's MAC.
    let as_ben = with_bytes(&for_ana, |b| {
        let at = b.windows(3).position(|w| w == b"ana").unwrap();
        b[at..at + 3].copy_from_slice(b"ben");
    });
    assert_eq!(verify(&key(), &as_ben, NOW), Err(TokenError::Tampered));
    // Ben's own token for the same conflict and choice is another token.
    let for_ben = Claims::new("3fa9c21e", Take::Hubspot, "ben@example.com", IN_72_H).unwrap();
    assert_ne!(sign(&key(), &for_ben), for_ana);
}

#[test]
fn an_expired_token_says_when() {
    let token = sign(&key(), &claims());
    assert!(verify(&key(), &token, IN_72_H - 1).is_ok());
    let err = verify(&key(), &token, IN_72_H).unwrap_err();
    assert_eq!(err, TokenError::Expired { at: IN_72_H });
    assert_eq!(
        err.to_string(),
        format!(
            "this review link expired at {}",
            crate::time::iso(IN_72_H * 1000)
        )
    );
    // A forged expiry does not get past the MAC first.
    let later = with_bytes(&token, |b| b[9] ^= 1);
    assert_eq!(verify(&key(), &later, IN_72_H), Err(TokenError::Tampered));
}

#[test]
fn another_keys_token_is_tampered() {
    let other = ReviewKey::new(vec![7u8; 48]).unwrap();
    let token = sign(&other, &claims());
    assert_eq!(verify(&key(), &token, NOW), Err(TokenError::Tampered));
    assert!(verify(&other, &token, NOW).is_ok());
}

#[test]
fn what_is_not_a_token_is_malformed() {
    for bad in [
        "",
        "abc",
        "not a token",
        "a/b",
        "AAAA====",
        &format!("{}=", sign(&key(), &claims())),
        &B64.encode([0u8; FIXED_LEN + MAC_LEN - 1]),
    ] {
        assert_eq!(
            verify(&key(), bad, NOW),
            Err(TokenError::Malformed),
            "{bad:?}"
        );
    }
    // Signed with the right key but not claims version 1 reads: malformed,
    // after the MAC (nothing unsigned is parsed).
    let mut payload = claims().encode();
    payload[0] = 2;
    let mac = key().mac(&payload).finalize().into_bytes();
    payload.extend_from_slice(&mac);
    assert_eq!(
        verify(&key(), &B64.encode(payload), NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn a_short_key_is_refused_and_no_key_is_shown() {
    let err = ReviewKey::new(vec![1u8; 31]).unwrap_err();
    assert_eq!(err, KeyError::TooShort { len: 31 });
    assert!(err.to_string().contains("at least 32"), "{err}");
    assert!(ReviewKey::new(vec![1u8; 32]).is_ok());
    let k = key();
    let shown = format!("{k:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert!(shown.contains("32 bytes"), "{shown}");
    // The token carries the claims and a MAC, not the key.
    let bytes = B64.decode(sign(&k, &claims())).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"0123456789abcdef"));
}

#[test]
fn errors_and_claims_never_show_the_mac() {
    let token = sign(&key(), &claims());
    let bytes = B64.decode(&token).unwrap();
    let mac_hex = hex::encode(&bytes[bytes.len() - MAC_LEN..]);
    let mac_b64 = B64.encode(&bytes[bytes.len() - MAC_LEN..]);
    let claims = verify(&key(), &token, NOW).unwrap();
    let expired = verify(&key(), &token, IN_72_H).unwrap_err();
    let tampered = verify(&key(), &with_bytes(&token, |b| b[0] ^= 1), NOW).unwrap_err();
    for shown in [
        format!("{claims:?}"),
        format!("{expired:?} {expired}"),
        format!("{tampered:?} {tampered}"),
        fingerprint(&token),
    ] {
        assert!(!shown.contains(&mac_hex) && !shown.contains(&mac_b64[..20]));
        assert!(!shown.contains(&token[..40]), "{shown}");
    }
    assert_eq!(fingerprint(&token).len(), 16);
    assert_ne!(
        fingerprint(&token),
        fingerprint(&sign(&key(), &self::claims())[1..])
    );
}

#[test]
fn claims_outside_the_format_are_refused() {
    let ok = |id: &str, to: &str| Claims::new(id, Take::Warp, to, NOW).is_ok();
    assert!(ok("3fa9c21e", "a@x"));
    assert!(ok(&"a".repeat(64), &format!("{}@x.io", "l".repeat(249))));
    assert!(!ok("", "a@x"));
    assert!(!ok(&"a".repeat(65), "a@x"));
    assert!(!ok("3fa9/c21e", "a@x"));
    assert!(!ok("3fa9c21e", "ax"));
    assert!(!ok("3fa9c21e", "a@b@x"));
    assert!(!ok("3fa9c21e", "@x"));
    assert!(!ok("3fa9c21e", "a @x"));
    assert!(!ok("3fa9c21e", "a@x\r\nBcc: e@vil"));
    assert!(!ok("3fa9c21e", &format!("{}@x.io", "l".repeat(250))));
}

fn any_claims() -> impl Strategy<Value = Claims> {
    (
        "[A-Za-z0-9_-]{1,64}",
        any::<bool>(),
        "[^@\\s\\p{Cc}]{1,30}@[^@\\s\\p{Cc}]{1,30}",
        any::<i64>(),
    )
        .prop_map(|(id, warp, to, at)| {
            let take = if warp { Take::Warp } else { Take::Hubspot };
            Claims::new(id, take, to, at).expect("the strategy makes valid claims")
        })
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(c in any_claims()) {
        let token = sign(&key(), &c);
        let now = c.expires_at().saturating_sub(1);
        if now < c.expires_at() {
            prop_assert_eq!(verify(&key(), &token, now), Ok(c));
        }
    }

    /// Any one character of the token replaced by any other character (in
    /// the alphabet or not) never verifies.
    #[test]
    fn one_character_changed_never_verifies(
        c in any_claims(),
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
    ) {
        let token = sign(&key(), &c);
        let i = at.index(token.len());
        prop_assume!(!token[i..].starts_with(with));
        let mut changed = token[..i].to_string();
        changed.push(with);
        changed.push_str(&token[i + 1..]);
        let now = c.expires_at().saturating_sub(1);
        prop_assert!(verify(&key(), &changed, now).is_err(), "{} verified", changed);
    }
}
