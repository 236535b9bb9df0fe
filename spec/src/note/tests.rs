//! Unit tests for the signed-note format. The published vectors (C2SP, Go x/mod, sigsum) and the
//! `signed_note` oracle are in `tests/notes_vectors.rs`.

use proptest::prelude::*;

use super::*;

fn signer(name: &str, seed_byte: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(name, [seed_byte; 32]).unwrap()
}

fn signed(text: &str, signers: &[&Ed25519Signer]) -> Note {
    let dyns: Vec<&dyn Signer> = signers.iter().map(|s| *s as &dyn Signer).collect();
    Note::sign(text, &dyns).unwrap()
}

/// A syntactically valid signature line for `name` (the signature bytes are not a signature).
fn fake_line(name: &str, key_id: u32) -> String {
    NoteSignature::new(name, key_id, vec![7; 64])
        .unwrap()
        .to_line()
}

#[test]
fn sign_parse_round_trip() {
    let a = signer("example.com/a", 1);
    let b = signer("example.com/b", 2);
    let note = signed("hello\nworld\n", &[&a, &b]);
    let bytes = note.to_bytes();
    assert!(bytes.starts_with(b"hello\nworld\n\n\xe2\x80\x94 example.com/a "));
    let parsed = Note::parse(&bytes).unwrap();
    assert_eq!(parsed, note);
    assert_eq!(parsed.text(), "hello\nworld\n");
    assert_eq!(parsed.signatures().len(), 2);
    assert_eq!(parsed.signatures()[1].name(), "example.com/b");
    assert_eq!(parsed.signatures()[1].key_id(), b.key_id());
    let (va, vb) = (a.verifier(), b.verifier());
    assert_eq!(verify(&parsed, &[&vb, &va]).unwrap(), vec![0, 1]);
    assert_eq!(verify(&parsed, &[&vb]).unwrap(), vec![0]);
}

#[test]
fn signature_bytes_are_ed25519_over_the_text() {
    // Check against ed25519-dalek directly, not through our Verifier.
    let a = signer("n", 3);
    let note = signed("t\n", &[&a]);
    let sig = note.signatures()[0].signature();
    assert_eq!(sig.len(), 64);
    let pk = ed25519_dalek::VerifyingKey::from_bytes(&a.public_key()).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(sig).unwrap();
    pk.verify_strict(b"t\n", &sig).unwrap();
}

#[test]
fn key_id_formula() {
    // SHA-256("n" || 0x0A || 0x01 || 32 zero bytes)[:4], written out independently.
    let mut input = b"n\n\x01".to_vec();
    input.extend_from_slice(&[0; 32]);
    let h = sha256(&input);
    let mut material = vec![0x01];
    material.extend_from_slice(&[0; 32]);
    assert_eq!(key_id("n", &material).to_be_bytes(), h[..4]);
}

#[test]
fn key_names() {
    for good in ["a", "example.com/log", "é", "a-b_c", "\u{200b}"] {
        assert!(is_valid_key_name(good), "{good:?}");
    }
    // Go's unicode.IsSpace set, plus '+', empty, and control characters.
    let spaces = [
        "\t", "\n", "\u{0b}", "\u{0c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}",
        "\u{2005}", "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
    ];
    for bad in spaces.iter().map(|s| format!("a{s}b")).chain([
        String::new(),
        "a+b".into(),
        "+".into(),
        "a\u{1}b".into(),
        "a\u{1f}".into(),
    ]) {
        assert!(!is_valid_key_name(&bad), "{bad:?}");
    }
}

#[test]
fn parse_rejects_malformed() {
    let a = signer("a", 1);
    let good = signed("text\n", &[&a]).to_bytes();
    let good = String::from_utf8(good).unwrap();
    let line = good.strip_prefix("text\n\n").unwrap().to_owned();
    let b64 = line.rsplit(' ').next().unwrap().trim_end().to_owned();
    let cases: Vec<(String, &str)> = vec![
        ("text\n".into(), "no signature block"),
        ("text\n\n".into(), "empty signature block"),
        (format!("text\n\n{}", line.trim_end()), "missing final LF"),
        (format!("\u{1}{good}"), "leading control"),
        (good.replace("text", "te\txt"), "tab"),
        (good.replace('\n', "\r\n"), "CRLF"),
        (format!("{good}\r"), "trailing CR"),
        (format!("{good}x\n"), "line after signatures"),
        (format!("{good}\n"), "trailing empty line"),
        (good.replace("— a", "- a"), "hyphen instead of em dash"),
        (good.replace("— a", "—a"), "no space after em dash"),
        (good.replace("— a ", "— a b "), "space in name"),
        (good.replace("— a ", "— a+b "), "plus in name"),
        (good.replace("— a ", "— a\u{a0}b "), "NBSP in name"),
        (good.replace("— a ", "—  "), "empty name"),
        (good.replace(&b64, ""), "empty base64"),
        (good.replace(&b64, &b64.replace('=', "")), "unpadded base64"),
        (good.replace(&b64, "AAAAAA=="), "4-byte blob"),
        (
            good.replace(&b64, "AAAAAAB="),
            "non-canonical trailing bits",
        ),
        (good.replace(&b64, &format!("{b64} ")), "trailing space"),
        (good.replace(&b64, &format!(" {b64}")), "double space"),
    ];
    for (input, what) in cases {
        assert!(Note::parse(input.as_bytes()).is_err(), "accepted: {what}");
    }
    assert_eq!(
        Note::parse(b"\xfftext\n\n"),
        Err(NoteError::Utf8),
        "leading 0xff"
    );
}

#[test]
fn signature_count_limit() {
    let text = "t\n\n";
    let line = fake_line("a", 1);
    let at_limit = format!("{text}{}", line.repeat(MAX_SIGNATURES));
    assert_eq!(
        Note::parse(at_limit.as_bytes()).unwrap().signatures().len(),
        MAX_SIGNATURES
    );
    let over = format!("{text}{}", line.repeat(MAX_SIGNATURES + 1));
    assert_eq!(
        Note::parse(over.as_bytes()),
        Err(NoteError::TooManySignatures)
    );
    let sig = NoteSignature::parse_line(&line).unwrap();
    assert_eq!(
        Note::new("t\n", vec![sig.clone(); MAX_SIGNATURES + 1]),
        Err(NoteError::TooManySignatures)
    );
    let mut note = Note::new("t\n", vec![sig.clone(); MAX_SIGNATURES]).unwrap();
    assert_eq!(note.push_signature(sig), Err(NoteError::TooManySignatures));
    assert_eq!(note.signatures().len(), MAX_SIGNATURES);
}

#[test]
fn size_limit() {
    let line = fake_line("a", 1);
    let mut text = "x".repeat(MAX_NOTE_SIZE - 1 - line.len() - 1);
    text.push('\n');
    let note = Note::new(&text, vec![NoteSignature::parse_line(&line).unwrap()]).unwrap();
    let bytes = note.to_bytes();
    assert_eq!(bytes.len(), MAX_NOTE_SIZE);
    assert_eq!(Note::parse(&bytes).unwrap(), note);
    let mut over = b"x".to_vec();
    over.extend_from_slice(&bytes);
    assert_eq!(
        Note::parse(&over),
        Err(NoteError::TooLarge(MAX_NOTE_SIZE + 1))
    );
    let long = format!("x{text}");
    let sig = NoteSignature::parse_line(&line).unwrap();
    assert!(matches!(
        Note::new(&long, vec![sig]),
        Err(NoteError::TooLarge(_))
    ));
}

#[test]
fn split_is_at_the_last_empty_line() {
    // "text\n\n— a …\n\n— b …\n": the `— a` line belongs to the text.
    let a = signer("a", 1);
    let b = signer("b", 2);
    let a_line = signed("text\n", &[&a]).signatures()[0].to_line();
    let inner = format!("text\n\n{a_line}");
    let note = signed(&inner, &[&b]);
    let parsed = Note::parse(&note.to_bytes()).unwrap();
    assert_eq!(parsed.text(), inner);
    assert_eq!(parsed.signatures().len(), 1);
    assert_eq!(verify(&parsed, &[&b.verifier()]).unwrap(), vec![0]);
    assert_eq!(
        verify(&parsed, &[&a.verifier()]),
        Err(NoteError::Unverified)
    );
}

#[test]
fn text_ending_in_empty_lines_round_trips() {
    let a = signer("a", 1);
    for text in ["\n", "a\n\n", "a\n\n\n", "\n\n", "x\n\nz\n"] {
        let note = signed(text, &[&a]);
        let parsed = Note::parse(&note.to_bytes()).unwrap();
        assert_eq!(parsed.text(), text);
        verify(&parsed, &[&a.verifier()]).unwrap();
    }
}

#[test]
fn sign_rejects_bad_text_and_names() {
    let a = signer("a", 1);
    for text in ["", "no newline", "tab\there\n", "cr\r\n", "nul\0\n"] {
        assert!(Note::sign(text, &[&a]).is_err(), "{text:?}");
    }
    assert_eq!(Note::sign("t\n", &[]), Err(NoteError::NoSignatures));

    struct BadName;
    impl Signer for BadName {
        fn name(&self) -> &str {
            "bad name"
        }
        fn key_id(&self) -> u32 {
            0
        }
        fn sign(&self, _: &[u8]) -> Vec<u8> {
            vec![1]
        }
    }
    assert_eq!(
        Note::sign("t\n", &[&BadName]),
        Err(NoteError::KeyName("bad name".into()))
    );
}

#[test]
fn add_signatures_replaces_same_key() {
    let a = signer("a", 1);
    let b = signer("b", 2);
    let c = signer("c", 3);
    let mut note = signed("t\n", &[&a, &b]);
    let stale = NoteSignature::new("a", a.key_id(), vec![9; 64]).unwrap();
    note = Note::new("t\n", vec![stale, note.signatures()[1].clone()]).unwrap();
    note.add_signatures(&[&c, &a]).unwrap();
    let names: Vec<&str> = note.signatures().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["b", "c", "a"]);
    verify(&note, &[&a.verifier(), &b.verifier(), &c.verifier()]).unwrap();
}

#[test]
fn verify_ignores_unknown_keys() {
    let a = signer("a", 1);
    let note = signed("t\n", &[&a]);
    let mut bytes = note.to_bytes();
    // Same name, other ID; other name, same ID; and an unrelated key. All carry junk.
    for line in [
        fake_line("a", a.key_id() ^ 1),
        fake_line("a2", a.key_id()),
        fake_line("z", 5),
    ] {
        bytes.extend_from_slice(line.as_bytes());
    }
    let note = Note::parse(&bytes).unwrap();
    assert_eq!(verify(&note, &[&a.verifier()]).unwrap(), vec![0]);
    let other = signer("z", 9);
    assert_eq!(
        verify(&note, &[&other.verifier()]),
        Err(NoteError::Unverified)
    );
    assert_eq!(verify(&note, &[]), Err(NoteError::Unverified));
}

#[test]
fn verify_rejects_a_bad_known_signature() {
    let a = signer("example.com/a", 1);
    let b = signer("b", 2);
    let note = signed("t\n", &[&a, &b]);
    let bad = NoteSignature::new("b", b.key_id(), vec![0; 64]).unwrap();
    let note = Note::new("t\n", vec![note.signatures()[0].clone(), bad]).unwrap();
    let err = verify(&note, &[&a.verifier(), &b.verifier()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid signature for key b+{:08x}", b.key_id())
    );
    assert_eq!(err.category(), "invalid_signature");
    // Without b's key the bad line is unknown and ignored.
    assert_eq!(verify(&note, &[&a.verifier()]).unwrap(), vec![0]);
}

#[test]
fn verify_checks_every_repeated_known_line() {
    // Go skips a second line from an already-seen key; we verify it (digest section 9 item 9).
    let a = signer("a", 1);
    let good = signed("t\n", &[&a]).signatures()[0].clone();
    let bad = NoteSignature::new("a", a.key_id(), vec![0; 64]).unwrap();
    let twice_good = Note::new("t\n", vec![good.clone(), good.clone()]).unwrap();
    assert_eq!(verify(&twice_good, &[&a.verifier()]).unwrap(), vec![0]);
    let good_then_bad = Note::new("t\n", vec![good, bad]).unwrap();
    assert!(matches!(
        verify(&good_then_bad, &[&a.verifier()]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn verify_rejects_ambiguous_verifiers() {
    let a = signer("a", 1);
    let note = signed("t\n", &[&a]);
    let (v1, v2) = (a.verifier(), a.verifier());
    let err = verify(&note, &[&v1, &v2]).unwrap_err();
    assert!(err.to_string().starts_with("ambiguous key a+"), "{err}");
    // Also when the ambiguous key signed nothing.
    let b = signer("b", 2).verifier();
    assert!(matches!(
        verify(&note, &[&v1, &b, &b]),
        Err(NoteError::AmbiguousKey { .. })
    ));
}

#[test]
fn flipped_bits_fail() {
    let a = signer("a", 1);
    let bytes = signed("origin\n1\n", &[&a]).to_bytes();
    let v = a.verifier();
    // Every bit of the text.
    for i in 0..("origin\n1\n".len() * 8) {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        let ok = Note::parse(&b).is_ok_and(|n| verify(&n, &[&v]).is_ok());
        assert!(!ok, "flipped text bit {i}");
    }
    // Every bit of the signature proper.
    let sig = signed("origin\n1\n", &[&a]).signatures()[0].clone();
    for i in 0..(64 * 8) {
        let mut s = sig.signature().to_vec();
        s[i / 8] ^= 1 << (i % 8);
        let n = Note::new(
            "origin\n1\n",
            vec![NoteSignature::new("a", sig.key_id(), s).unwrap()],
        )
        .unwrap();
        assert!(verify(&n, &[&v]).is_err(), "flipped signature bit {i}");
    }
}

#[test]
fn vkey_and_skey_round_trip() {
    let a = signer("example.com/log", 4);
    let vkey = a.verifier().to_vkey();
    let skey = a.to_skey();
    assert!(skey.starts_with(&format!(
        "PRIVATE+KEY+example.com/log+{:08x}+AQ",
        a.key_id()
    )));
    let v = Ed25519Verifier::from_vkey(&vkey).unwrap();
    assert_eq!(v, a.verifier());
    assert_eq!(v.to_vkey(), vkey);
    let s = Ed25519Signer::from_skey(&skey).unwrap();
    assert_eq!(s.to_skey(), skey);
    assert_eq!(s.public_key(), a.public_key());
    let parsed = VerifierKey::parse(&vkey).unwrap();
    assert_eq!(parsed.key_type, SIG_TYPE_ED25519);
    assert_eq!(parsed.key, a.public_key());
    assert_eq!(parsed.to_vkey(), vkey);
}

#[test]
fn vkey_rejects() {
    let a = signer("n", 4);
    let vkey = a.verifier().to_vkey();
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    let (id, b64) = (parts[1], parts[2]);
    assert_eq!(b64.len(), 44, "33 bytes, no padding");
    let wrong_id = format!("{:08x}", a.key_id() ^ 1);
    let with = |t: u8, key: &[u8]| {
        let mut m = vec![t];
        m.extend_from_slice(key);
        let id = key_id("n", &m);
        format!("n+{id:08x}+{}", encode_base64(&m))
    };
    let cases = [
        ("n".to_owned(), "no plus"),
        (format!("n+{id}"), "two parts"),
        (format!("n+{}+{b64}", id.to_uppercase()), "upper-case ID"),
        (format!("n+{}+{b64}", &id[1..]), "7-digit ID"),
        (format!("n+0{id}+{b64}"), "9-digit ID"),
        (format!("n+{wrong_id}+{b64}"), "wrong ID"),
        (format!("n m+{id}+{b64}"), "space in name"),
        (format!("+{id}+{b64}"), "empty name"),
        (format!("n+{id}+{}", &b64[..43]), "truncated base64"),
        (format!("n+{id}+{b64}="), "extra padding"),
        (format!("n+{id}+{b64}+"), "trailing plus"),
        (format!("n+{id}+"), "empty key"),
        (with(0x04, &a.public_key()), "type 0x04"),
        (with(0x01, &a.public_key()[..31]), "31-byte key"),
        (with(0x01, &[0; 32]), "y = 0 (small order)"),
        (
            with(0x01, &{
                let mut k = [0u8; 32];
                k[0] = 2;
                k
            }),
            "y = 2 is not on the curve",
        ),
        (
            with(0x01, &{
                let mut k = [0u8; 32];
                k[0] = 1;
                k
            }),
            "identity point (small order)",
        ),
    ];
    for (vkey, what) in cases {
        assert!(
            Ed25519Verifier::from_vkey(&vkey).is_err(),
            "accepted: {what}"
        );
    }
    assert!(Ed25519Verifier::from_vkey(&format!("n+{id}+{b64}")).is_ok());
}

#[test]
fn skey_rejects() {
    let a = signer("n", 4);
    let skey = a.to_skey();
    let wrong = skey.replace(
        &format!("{:08x}", a.key_id()),
        &format!("{:08x}", a.key_id() ^ 1),
    );
    assert!(matches!(
        Ed25519Signer::from_skey(&wrong),
        Err(KeyError::KeyId { .. })
    ));
    assert!(Ed25519Signer::from_skey(skey.strip_prefix("PRIVATE+").unwrap()).is_err());
    assert!(Ed25519Signer::from_skey(&skey.replacen("+AQ", "+BA", 1)).is_err());
    assert!(Ed25519Signer::from_skey(&a.verifier().to_vkey()).is_err());
}

#[test]
fn debug_does_not_print_the_seed() {
    let seed = [0xab; 32];
    let s = Ed25519Signer::from_seed("n", seed).unwrap();
    let debug = format!("{s:?}");
    let skey = s.to_skey();
    let seed_b64 = skey.rsplit('+').next().unwrap();
    for secret in [
        crate::text::to_hex(&seed),
        "abababab".to_owned(),
        seed_b64.to_owned(),
        "171".to_owned(),
    ] {
        assert!(!debug.contains(&secret), "{debug}");
    }
    assert!(debug.contains(&crate::text::to_hex(&s.public_key())));
}

#[test]
fn signature_line_round_trip() {
    let line = fake_line("example.com/w", 0xdeadbeef);
    let sig = NoteSignature::parse_line(&line).unwrap();
    assert_eq!(sig.key_id(), 0xdeadbeef);
    assert_eq!(sig.to_line(), line);
    assert!(NoteSignature::parse_line(line.trim_end()).is_err());
    assert!(NoteSignature::parse_line(&format!("{line}{line}")).is_err());
    assert!(NoteSignature::new("a", 1, vec![]).is_err());
}

/// Valid note text: printable lines (including non-ASCII), possibly empty, each ending in LF.
fn note_text() -> impl Strategy<Value = String> {
    prop::collection::vec("[^\\x00-\\x1f]{0,20}", 1..6)
        .prop_map(|lines| lines.iter().map(|l| format!("{l}\n")).collect::<String>())
}

proptest! {
    #[test]
    fn prop_sign_parse_verify(
        text in note_text(),
        seeds in prop::collection::vec(any::<u8>(), 1..4),
    ) {
        let signers: Vec<Ed25519Signer> = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| Ed25519Signer::from_seed(&format!("k{i}"), [*s; 32]).unwrap())
            .collect();
        let dyns: Vec<&dyn Signer> = signers.iter().map(|s| s as &dyn Signer).collect();
        let note = Note::sign(&text, &dyns).unwrap();
        let bytes = note.to_bytes();
        let parsed = Note::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.text(), text.as_str());
        prop_assert_eq!(parsed.to_bytes(), bytes);
        let verifiers: Vec<Ed25519Verifier> = signers.iter().map(|s| s.verifier()).collect();
        let dyns: Vec<&dyn Verifier> = verifiers.iter().map(|v| v as &dyn Verifier).collect();
        prop_assert_eq!(verify(&parsed, &dyns).unwrap(), (0..signers.len()).collect::<Vec<_>>());
    }

    /// Mutate one byte of a valid note: whatever still parses must serialise back to itself.
    #[test]
    fn prop_parse_is_canonical(
        text in note_text(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = signed(&text, &[&signer("k", 1)]).to_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(note) = Note::parse(&bytes) {
            prop_assert_eq!(note.to_bytes(), bytes);
        }
    }
}
