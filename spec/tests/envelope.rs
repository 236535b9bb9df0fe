//! The leaf envelope against hand-derived RFC 8949 bytes, against minicbor (an independent CBOR
//! decoder and encoder), and against one negative input per strictness rule.

// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sealtrail_spec::envelope::{
    ENVELOPE_VERSION, EnvelopeError, Field, LeafEnvelope, MAX_CONTENT_TYPE_LEN, MAX_EVENT_TYPE_LEN,
    MAX_OVERHEAD, MAX_PRINCIPAL_LEN, MAX_SAFE_PAYLOAD_LEN,
};
use sealtrail_spec::tiles::MAX_ENTRY_SIZE;

/// Example A, also the worked example of `docs/leaf-envelope.md`. Derived by hand from RFC 8949
/// section 3 (initial byte = major type << 5 | additional info; info 0..23 is the value itself,
/// 24/25/26/27 announce a 1/2/4/8-byte big-endian value) and section 4.2.1 (shortest heads,
/// definite lengths, keys in bytewise order, which for keys 0..5 is numeric order):
///
/// ```text
/// a6                            map, 6 pairs               (5 << 5 = 0xa0) | 6
/// 00 01                         key 0: version 1
/// 01 1b 00 00 01 8b cf e5 68 00 key 1: 1700000000000 = 0x18bcfe56800 > 0xffffffff, so info 27
/// 02 65 61 6c 69 63 65          key 2: text(5) "alice"     (3 << 5 = 0x60) | 5
/// 03 70 61 70 70 ... 6f 6e      key 3: text(16) "application/json"   0x60 | 16 = 0x70
/// 04 65 6c 6f 67 69 6e          key 4: text(5) "login"
/// 05 4b 7b 22 6f ... 65 7d      key 5: bytes(11) {"ok":true}   (2 << 5 = 0x40) | 11 = 0x4b
/// ```
const EXAMPLE_A: &str = concat!(
    "a6",
    "0001",
    "011b0000018bcfe56800",
    "0265616c696365",
    "03706170706c69636174696f6e2f6a736f6e",
    "04656c6f67696e",
    "054b7b226f6b223a747275657d",
);

/// `SHA-256(0x00 || EXAMPLE_A)`, computed with Python's hashlib, not with this crate.
const EXAMPLE_A_LEAF_HASH: &str =
    "431b288dd461bf69b70cee8db3d43ee60dd1a603bd264b78c5b07d10ac1dda5e";

fn example_a() -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1_700_000_000_000,
        principal: "alice".into(),
        content_type: "application/json".into(),
        event_type: Some("login".into()),
        payload: br#"{"ok":true}"#.to_vec(),
    }
}

/// Example B: no event type, and one- and two-byte heads.
///
/// ```text
/// a5                            map, 5 pairs (key 4 absent)
/// 00 01                         key 0: version 1
/// 01 19 03 e8                   key 1: 1000 = 0x3e8 > 0xff, so info 25 and two bytes
/// 02 69 61 6e ... 73            key 2: text(9) "anonymous"   0x60 | 9 = 0x69
/// 03 78 18 61 70 ... 6d         key 3: text(24) "application/octet-stream": 24 is not < 24,
///                               so info 24 (0x60 | 24 = 0x78) and one byte 0x18
/// 05 58 18 00 * 24              key 5: bytes(24), 0x40 | 24 = 0x58, then 0x18, then 24 zeros
/// ```
fn example_b_hex() -> String {
    [
        "a5",
        "0001",
        "011903e8",
        "0269616e6f6e796d6f7573",
        "0378186170706c69636174696f6e2f6f637465742d73747265616d",
        "055818",
        &"00".repeat(24),
    ]
    .concat()
}

fn example_b() -> LeafEnvelope {
    LeafEnvelope {
        time_ms: 1000,
        principal: "anonymous".into(),
        content_type: "application/octet-stream".into(),
        event_type: None,
        payload: vec![0; 24],
    }
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// A lenient decoder made with minicbor: accepts any key order, non-shortest heads, an
/// indefinite-length map and so on, but needs every value of the right type. The strict decoder
/// must agree with it on every input the strict decoder accepts.
fn minicbor_decode(bytes: &[u8]) -> Option<LeafEnvelope> {
    let mut d = minicbor::Decoder::new(bytes);
    let mut pairs = d.map().ok()?;
    let mut version = None;
    let mut env = LeafEnvelope {
        time_ms: 0,
        principal: String::new(),
        content_type: String::new(),
        event_type: None,
        payload: Vec::new(),
    };
    loop {
        match pairs.as_mut() {
            Some(0) => break,
            Some(n) => *n -= 1,
            None if d.datatype().ok()? == minicbor::data::Type::Break => {
                d.set_position(d.position() + 1);
                break;
            }
            None => {}
        }
        match d.u64().ok()? {
            0 => version = Some(d.u64().ok()?),
            1 => env.time_ms = d.u64().ok()?,
            2 => env.principal = d.str().ok()?.to_owned(),
            3 => env.content_type = d.str().ok()?.to_owned(),
            4 => env.event_type = Some(d.str().ok()?.to_owned()),
            5 => env.payload = d.bytes().ok()?.to_vec(),
            _ => return None,
        }
    }
    (version == Some(ENVELOPE_VERSION) && d.position() == bytes.len()).then_some(env)
}

/// The same map written with minicbor's encoder, which writes shortest heads and definite
/// lengths; keys are written in ascending order by hand.
fn minicbor_encode(env: &LeafEnvelope) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(if env.event_type.is_some() { 6 } else { 5 }).unwrap();
    e.u8(0).unwrap().u64(ENVELOPE_VERSION).unwrap();
    e.u8(1).unwrap().u64(env.time_ms).unwrap();
    e.u8(2).unwrap().str(&env.principal).unwrap();
    e.u8(3).unwrap().str(&env.content_type).unwrap();
    if let Some(t) = &env.event_type {
        e.u8(4).unwrap().str(t).unwrap();
    }
    e.u8(5).unwrap().bytes(&env.payload).unwrap();
    e.into_writer()
}

#[test]
fn hand_derived_vectors() {
    for (env, hex) in [
        (example_a(), EXAMPLE_A.to_owned()),
        (example_b(), example_b_hex()),
    ] {
        let bytes = unhex(&hex);
        assert_eq!(env.encode().unwrap(), bytes);
        assert_eq!(env.encoded_len(), bytes.len());
        assert_eq!(LeafEnvelope::decode(&bytes).unwrap(), env);
        assert_eq!(minicbor_decode(&bytes).unwrap(), env);
        assert_eq!(minicbor_encode(&env), bytes);
    }
    assert_eq!(unhex(EXAMPLE_A).len(), 58);
    assert_eq!(
        example_a().leaf_hash().unwrap().to_hex(),
        EXAMPLE_A_LEAF_HASH
    );
}

#[test]
fn worked_example_in_the_spec_matches() {
    let doc: String = include_str!("../docs/leaf-envelope.md")
        .split_whitespace()
        .collect();
    assert!(doc.contains(EXAMPLE_A));
    assert!(doc.contains(EXAMPLE_A_LEAF_HASH));
    assert!(doc.contains(&example_a().leaf_hash().unwrap().to_base64()));
}

/// Example A with the hex of one item replaced (`from` must occur exactly once).
fn mutate_a(from: &str, to: &str) -> Vec<u8> {
    assert_eq!(EXAMPLE_A.matches(from).count(), 1, "{from}");
    unhex(&EXAMPLE_A.replace(from, to))
}

fn decode_err(bytes: &[u8]) -> EnvelopeError {
    LeafEnvelope::decode(bytes).unwrap_err()
}

#[test]
fn rejects_non_shortest_heads_that_lenient_decoders_accept() {
    let cases = [
        // version 1 as 0x18 0x01 (one-byte argument holding a value below 24)
        ("0001011b", "001801011b", 2),
        // key 2 as 0x18 0x02
        ("0265616c", "180265616c", 13),
        // text length 5 as 0x78 0x05
        ("0265616c", "027805616c", 14),
        // text length 16 as 0x79 0x00 0x10
        ("037061", "0379001061", 21),
        // payload length 11 as 0x5a 0x00 0x00 0x00 0x0b
        ("054b7b", "055a0000000b7b", 46),
    ];
    for (from, to, offset) in cases {
        let bytes = mutate_a(from, to);
        assert_eq!(minicbor_decode(&bytes), Some(example_a()), "{to}");
        assert_eq!(
            decode_err(&bytes),
            EnvelopeError::NotShortest { offset },
            "{to}"
        );
    }
    // Example B's time 1000 in four bytes instead of two.
    let b = unhex(&example_b_hex().replace("011903e8", "011a000003e8"));
    assert_eq!(minicbor_decode(&b), Some(example_b()));
    assert_eq!(decode_err(&b), EnvelopeError::NotShortest { offset: 4 });
    // The map head: 6 pairs as 0xb8 0x06.
    let m = mutate_a("a60001", "b8060001");
    assert_eq!(minicbor_decode(&m), Some(example_a()));
    assert_eq!(decode_err(&m), EnvelopeError::NotShortest { offset: 0 });
}

#[test]
fn rejects_indefinite_lengths() {
    // An indefinite-length map: 0xbf, the pairs, the break 0xff.
    let mut map = mutate_a("a60001", "bf0001");
    map.push(0xff);
    assert_eq!(minicbor_decode(&map), Some(example_a()));
    assert_eq!(decode_err(&map), EnvelopeError::Indefinite { offset: 0 });
    // An indefinite-length text string made of one chunk.
    let text = mutate_a("0265616c696365", "027f65616c696365ff");
    assert_eq!(decode_err(&text), EnvelopeError::Indefinite { offset: 14 });
    // An indefinite-length byte string.
    let bytes = mutate_a(
        "054b7b226f6b223a747275657d",
        "055f4b7b226f6b223a747275657dff",
    );
    assert_eq!(decode_err(&bytes), EnvelopeError::Indefinite { offset: 46 });
}

#[test]
fn rejects_bad_keys() {
    // Principal and content type swapped.
    let swapped = mutate_a(
        "0265616c69636503706170706c69636174696f6e2f6a736f6e",
        "03706170706c69636174696f6e2f6a736f6e0265616c696365",
    );
    assert_eq!(minicbor_decode(&swapped), Some(example_a()));
    assert_eq!(
        decode_err(&swapped),
        EnvelopeError::KeyOrder {
            key: 2,
            prev: 3,
            offset: 31
        }
    );
    // Principal twice (7 pairs).
    let dup = mutate_a(
        "a60001011b0000018bcfe568000265616c696365",
        "a70001011b0000018bcfe568000265616c6963650265616c696365",
    );
    assert_eq!(
        decode_err(&dup),
        EnvelopeError::DuplicateKey { key: 2, offset: 20 }
    );
    // Key 6 after the payload (7 pairs).
    let mut unknown = mutate_a("a60001", "a70001");
    unknown.extend([0x06, 0x01]);
    assert_eq!(
        decode_err(&unknown),
        EnvelopeError::UnknownKey { key: 6, offset: 58 }
    );
    // A text key and a negative-integer key.
    let text_key = mutate_a("a60001", "a6600001");
    assert!(matches!(
        decode_err(&text_key),
        EnvelopeError::WrongType {
            item: "map key",
            offset: 1,
            found: "a text string",
            ..
        }
    ));
    let negative_key = mutate_a("a60001011b", "a6200001011b");
    assert!(matches!(
        decode_err(&negative_key),
        EnvelopeError::WrongType {
            item: "map key",
            found: "a negative integer",
            ..
        }
    ));
}

#[test]
fn rejects_missing_required_keys() {
    for (from, to, field) in [
        ("a60001011b", "a5011b", Field::Version),
        ("011b0000018bcfe56800", "", Field::Time),
        ("0265616c696365", "", Field::Principal),
        (
            "03706170706c69636174696f6e2f6a736f6e",
            "",
            Field::ContentType,
        ),
        ("054b7b226f6b223a747275657d", "", Field::Payload),
    ] {
        let mut bytes = mutate_a(from, to);
        if !to.starts_with("a5") {
            bytes[0] = 0xa5;
        }
        assert_eq!(
            decode_err(&bytes),
            EnvelopeError::MissingKey(field),
            "{field}"
        );
    }
    // The event type is optional.
    let no_event = mutate_a("04656c6f67696e", "");
    let mut no_event = no_event;
    no_event[0] = 0xa5;
    let env = LeafEnvelope::decode(&no_event).unwrap();
    assert_eq!(env.event_type, None);
    // An empty map.
    assert_eq!(
        decode_err(&[0xa0]),
        EnvelopeError::MissingKey(Field::Version)
    );
}

#[test]
fn rejects_other_versions() {
    assert_eq!(
        decode_err(&mutate_a("a60001", "a60002")),
        EnvelopeError::Version(2)
    );
    assert_eq!(
        decode_err(&mutate_a("a60001", "a60000")),
        EnvelopeError::Version(0)
    );
    // Checked before the rest, which a later version may lay out differently.
    assert_eq!(decode_err(&[0xa1, 0x00, 0x02]), EnvelopeError::Version(2));
}

#[test]
fn rejects_wrong_types_null_floats_and_tags() {
    let wrong = |bytes: &[u8]| match decode_err(bytes) {
        EnvelopeError::WrongType {
            item,
            expected,
            found,
            ..
        } => (item, expected, found),
        e => panic!("expected WrongType, got {e:?}"),
    };
    // A null event type (absence is spelled by leaving key 4 out).
    assert_eq!(
        wrong(&mutate_a("04656c6f67696e", "04f6")),
        ("event type (key 4)", "a text string", "null")
    );
    // The payload as a text string.
    assert_eq!(
        wrong(&mutate_a("054b7b", "056b7b")),
        ("payload (key 5)", "a byte string", "a text string")
    );
    // The principal as a byte string.
    assert_eq!(
        wrong(&mutate_a("0265616c", "0245616c")),
        ("principal (key 2)", "a text string", "a byte string")
    );
    // The time as a double (0xfb).
    assert_eq!(
        wrong(&mutate_a("011b0000018bcfe56800", "01fb4278bcfe56800000")),
        ("time (key 1)", "an unsigned integer", "a float")
    );
    // The version as true.
    assert_eq!(
        wrong(&mutate_a("a60001", "a600f5")),
        ("version (key 0)", "an unsigned integer", "a boolean")
    );
    // An array instead of the map.
    assert_eq!(wrong(&unhex("8100")), ("envelope", "a map", "an array"));
    // A break stop code where a key should be.
    assert_eq!(
        wrong(&[0xa1, 0xff]),
        ("map key", "an unsigned integer", "a break stop code")
    );
    // Tag 1 (epoch time) on the time, and the self-describe tag 55799 on the whole map.
    assert_eq!(
        decode_err(&mutate_a("011b0000018bcfe56800", "01c11b0000018bcfe56800")),
        EnvelopeError::Tag { offset: 4 }
    );
    let mut described = unhex("d9d9f7");
    described.extend(unhex(EXAMPLE_A));
    assert_eq!(decode_err(&described), EnvelopeError::Tag { offset: 0 });
    // Reserved additional information 28, and 31 on an integer.
    assert_eq!(
        decode_err(&mutate_a("a60001", "a6001c")),
        EnvelopeError::Reserved {
            offset: 2,
            info: 28
        }
    );
    assert_eq!(
        decode_err(&mutate_a("a60001", "a6001f")),
        EnvelopeError::Reserved {
            offset: 2,
            info: 31
        }
    );
}

#[test]
fn rejects_trailing_bytes_and_truncation() {
    let mut trailing = unhex(EXAMPLE_A);
    trailing.push(0x00);
    assert_eq!(decode_err(&trailing), EnvelopeError::TrailingBytes(1));
    let mut two = unhex(EXAMPLE_A);
    two.extend(unhex(EXAMPLE_A));
    assert_eq!(decode_err(&two), EnvelopeError::TrailingBytes(58));
    let a = unhex(EXAMPLE_A);
    for n in 0..a.len() {
        assert!(
            LeafEnvelope::decode(&a[..n]).is_err(),
            "prefix of {n} bytes"
        );
    }
    assert_eq!(decode_err(&[]), EnvelopeError::Truncated { offset: 0 });
    assert_eq!(decode_err(&a[..3]), EnvelopeError::Truncated { offset: 3 });
    // A length far beyond the input.
    assert_eq!(
        decode_err(&mutate_a(
            "054b7b226f6b223a747275657d",
            "055bffffffffffffffff"
        )),
        EnvelopeError::Truncated { offset: 46 }
    );
}

#[test]
fn rejects_bad_text() {
    // Invalid UTF-8: a lone continuation byte in the principal, an overlong '/' (0xc0 0xaf)
    // in the content type.
    assert_eq!(
        decode_err(&mutate_a("0265616c696365", "026561ff696365")),
        EnvelopeError::Utf8(Field::Principal)
    );
    assert_eq!(
        decode_err(&mutate_a("03706170", "037261c0af70")),
        EnvelopeError::Utf8(Field::ContentType)
    );
    // An empty event type (the absent one is spelled by omission).
    assert_eq!(
        decode_err(&mutate_a("04656c6f67696e", "0460")),
        EnvelopeError::EmptyText(Field::EventType)
    );
    // A control character (newline) in the principal.
    assert_eq!(
        decode_err(&mutate_a("0265616c696365", "0265610a696365")),
        EnvelopeError::ForbiddenChar {
            field: Field::Principal,
            ch: '\n'
        }
    );
}

#[test]
fn field_rules_on_encode() {
    let with = |f: &dyn Fn(&mut LeafEnvelope)| {
        let mut e = example_a();
        f(&mut e);
        e.encode()
    };
    assert_eq!(
        with(&|e| e.principal.clear()),
        Err(EnvelopeError::EmptyText(Field::Principal))
    );
    assert_eq!(
        with(&|e| e.content_type.clear()),
        Err(EnvelopeError::EmptyText(Field::ContentType))
    );
    assert_eq!(
        with(&|e| e.event_type = Some(String::new())),
        Err(EnvelopeError::EmptyText(Field::EventType))
    );
    assert_eq!(
        with(&|e| e.principal = "a".repeat(MAX_PRINCIPAL_LEN + 1)),
        Err(EnvelopeError::TextTooLong {
            field: Field::Principal,
            len: MAX_PRINCIPAL_LEN + 1,
            max: MAX_PRINCIPAL_LEN
        })
    );
    // Limits count UTF-8 bytes: 128 two-byte characters are 256 bytes.
    assert!(with(&|e| e.principal = "é".repeat(128)).is_ok());
    assert!(with(&|e| e.principal = "é".repeat(129)).is_err());
    assert!(with(&|e| e.content_type = "a".repeat(MAX_CONTENT_TYPE_LEN)).is_ok());
    assert!(with(&|e| e.content_type = "a".repeat(MAX_CONTENT_TYPE_LEN + 1)).is_err());
    assert!(with(&|e| e.event_type = Some("a".repeat(MAX_EVENT_TYPE_LEN))).is_ok());
    assert!(with(&|e| e.event_type = Some("a".repeat(MAX_EVENT_TYPE_LEN + 1))).is_err());
    for (field, ch) in [
        (Field::Principal, '\0'),
        (Field::Principal, '\u{7f}'),
        (Field::Principal, '\u{85}'),
        (Field::EventType, '\t'),
        (Field::ContentType, '\r'),
        (Field::ContentType, 'é'),
    ] {
        let got = with(&|e| {
            let s = format!("a{ch}b");
            match field {
                Field::Principal => e.principal = s,
                Field::ContentType => e.content_type = s,
                _ => e.event_type = Some(s),
            }
        });
        assert_eq!(got, Err(EnvelopeError::ForbiddenChar { field, ch }));
    }
    // Non-ASCII is fine in the principal and the event type.
    assert!(with(&|e| e.principal = "Zoë 🛡".into()).is_ok());
    assert!(with(&|e| e.event_type = Some("connexion réussie".into())).is_ok());
    // Content type parameters with spaces and quotes are fine.
    assert!(with(&|e| e.content_type = "text/plain; charset=\"utf-8\"".into()).is_ok());
}

/// The largest valid fields, so that the payload is all that decides the size.
fn largest_fields(payload_len: usize) -> LeafEnvelope {
    LeafEnvelope {
        time_ms: u64::MAX,
        principal: "p".repeat(MAX_PRINCIPAL_LEN),
        content_type: "c".repeat(MAX_CONTENT_TYPE_LEN),
        event_type: Some("e".repeat(MAX_EVENT_TYPE_LEN)),
        payload: vec![0xa5; payload_len],
    }
}

#[test]
fn size_cap_at_65535_and_65536() {
    assert_eq!(MAX_ENTRY_SIZE, 65535);
    assert_eq!(MAX_SAFE_PAYLOAD_LEN, 64867);
    let fits = largest_fields(MAX_SAFE_PAYLOAD_LEN);
    assert_eq!(fits.encoded_len(), 65535);
    assert_eq!(fits.encoded_len() - fits.payload.len(), MAX_OVERHEAD);
    let bytes = fits.encode().unwrap();
    assert_eq!(bytes.len(), 65535);
    assert_eq!(LeafEnvelope::decode(&bytes).unwrap(), fits);
    assert_eq!(minicbor_decode(&bytes).unwrap(), fits);

    let over = largest_fields(MAX_SAFE_PAYLOAD_LEN + 1);
    assert_eq!(over.encoded_len(), 65536);
    assert_eq!(over.encode(), Err(EnvelopeError::TooLarge(65536)));
    assert_eq!(over.validate(), Err(EnvelopeError::TooLarge(65536)));
    // The same 65536 bytes handed to the decoder are refused before parsing.
    let over_bytes = minicbor_encode(&over);
    assert_eq!(over_bytes.len(), 65536);
    assert_eq!(decode_err(&over_bytes), EnvelopeError::TooLarge(65536));

    // Small fields leave room for a bigger payload: exactly 65535 again.
    let mut small = example_b();
    small.payload = vec![0; 0];
    let room = MAX_ENTRY_SIZE - small.encoded_len() - 2; // the payload head grows by 2 bytes
    small.payload = vec![1; room];
    assert_eq!(small.encode().unwrap().len(), 65535);
    small.payload.push(1);
    assert_eq!(small.encode(), Err(EnvelopeError::TooLarge(65536)));
}

#[test]
fn error_kinds() {
    assert_eq!(EnvelopeError::TooLarge(1).kind(), "too_large");
    assert_eq!(
        EnvelopeError::NotShortest { offset: 0 }.kind(),
        "non_canonical"
    );
    assert_eq!(EnvelopeError::Version(2).kind(), "unsupported_version");
    assert_eq!(
        EnvelopeError::Utf8(Field::Principal).kind(),
        "invalid_field"
    );
    assert_eq!(EnvelopeError::TrailingBytes(1).kind(), "malformed");
    assert_eq!(
        EnvelopeError::KeyOrder {
            key: 2,
            prev: 3,
            offset: 31
        }
        .to_string(),
        "map key 2 at byte 31 follows key 3: keys must ascend"
    );
}

fn envelope_strategy() -> impl Strategy<Value = LeafEnvelope> {
    (
        prop_oneof![0..24u64, 0..0x1_0000u64, any::<u64>()],
        "[^\\p{Cc}]{1,60}",
        "[ -~]{1,100}",
        proptest::option::of("[^\\p{Cc}]{1,30}"),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..30),
            proptest::collection::vec(any::<u8>(), 0..3000),
        ],
    )
        .prop_map(
            |(time_ms, principal, content_type, event_type, payload)| LeafEnvelope {
                time_ms,
                principal,
                content_type,
                event_type,
                payload,
            },
        )
}

proptest! {
    #[test]
    fn round_trip(env in envelope_strategy()) {
        let bytes = env.encode().unwrap();
        prop_assert_eq!(bytes.len(), env.encoded_len());
        let back = LeafEnvelope::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &env);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        // Two independent implementations agree.
        prop_assert_eq!(minicbor_encode(&env), bytes.clone());
        prop_assert_eq!(minicbor_decode(&bytes), Some(env));
    }

    #[test]
    fn mutated_encodings_are_rejected_or_canonical(
        env in envelope_strategy(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        op in 0..3u8,
    ) {
        let mut bytes = env.encode().unwrap();
        let i = at.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => { bytes.remove(i); }
        }
        if let Ok(got) = LeafEnvelope::decode(&bytes) {
            prop_assert_eq!(got.encode().unwrap(), bytes.clone());
            prop_assert_eq!(minicbor_decode(&bytes), Some(got));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        sealtrail_spec::roundtrip::leaf_envelope(&bytes);
    }
}
